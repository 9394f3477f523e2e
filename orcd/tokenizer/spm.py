"""gguf-spm: SentencePiece BPE (tokenizer.ggml.model = "llama", Phi-3) as llama.cpp's
llm_tokenizer_spm runs it: spaces become "▁", a space is put before text that starts the
input or follows a special token (add_space_prefix), adjacent symbols merge while their
concatenation is a token, highest score first (leftmost on ties; in _spm.pyx), and a
character with no token falls back to its UTF-8 bytes as <0xNN> tokens."""
from __future__ import annotations

from orcd.errors import ModelLoadError
from orcd.tokenizer._spm import SpmMerger
from orcd.tokenizer.base import SpecialSplitter, Tokenizer
from orcd.tokenizer.bpe import special_texts, token_ids
from orcd.tokenizer.vocab import BYTE, NORMAL, UNUSED, GgufVocab, eot_ids

SPACE = "\u2581"


def _piece(text: str, kind: int) -> bytes:
    if kind == UNUSED:
        return b""  # llama.cpp prints nothing for these
    if kind == BYTE and len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
        return bytes([int(text[3:5], 16)])
    if kind != NORMAL:
        return text.encode("utf-8", "surrogateescape")
    return text.replace(SPACE, " ").encode("utf-8", "surrogateescape")


class GgufSpmTokenizer(Tokenizer):
    kind = "gguf-spm"

    def __init__(self, vocab: GgufVocab):
        if vocab.scores is None:
            raise ModelLoadError("a SentencePiece vocabulary (tokenizer.ggml.model = llama) "
                                 "needs tokenizer.ggml.scores; the GGUF has none")
        ids = token_ids(vocab.tokens)
        self._merger = SpmMerger(vocab.tokens, vocab.scores.tolist(),
                                 [ids.get(f"<0x{b:02X}>", -1) for b in range(256)])
        self.add_space_prefix = vocab.add_space_prefix
        self._splitter = SpecialSplitter(*special_texts(vocab), vocab.rstrip_ids)
        kinds = vocab.token_type.tolist()
        super().__init__(pieces=[_piece(t, k) for t, k in zip(vocab.tokens, kinds)],
                         special=vocab.special_ids, breaks=vocab.break_ids,
                         bos_id=vocab.bos_id, eos_id=vocab.eos_id, eot_ids=eot_ids(vocab),
                         add_bos=vocab.add_bos, add_eos=vocab.add_eos,
                         chat_template=vocab.chat_template,
                         strips_leading_space=vocab.add_space_prefix)

    def _encode_text(self, text: str, parse_special: bool) -> list[int]:
        ids, after_special = [], True
        for fragment in self._splitter.split(text, parse_special):
            if isinstance(fragment, int):
                ids.append(fragment)
                after_special = True
                continue
            if self.add_space_prefix and after_special:
                fragment = " " + fragment
            ids += self._merger.encode(fragment.replace(" ", SPACE))
            after_special = False
        return ids
