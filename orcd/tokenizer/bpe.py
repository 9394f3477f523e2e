"""gguf-bpe: byte-level BPE (tokenizer.ggml.model = "gpt2") from the GGUF's tokens and
merges, split first by the pre-tokenizer that tokenizer.ggml.pre names."""
from __future__ import annotations

from orcd.tokenizer._bpe import BpeMerger
from orcd.tokenizer.base import SpecialSplitter, Tokenizer
from orcd.tokenizer.bytelevel import BYTE_CHARS, text_to_bytes
from orcd.tokenizer.pretokenize import IGNORE_MERGES, PreTokenizer
from orcd.tokenizer.recent import RecentTexts
from orcd.tokenizer.vocab import (CONTROL, NORMAL, UNKNOWN, UNUSED, USER_DEFINED, GgufVocab,
                                  eot_ids)

# The ids of pieces of a staged pre-tokenizer's first regex, remembered: a chat client resends
# its whole conversation each turn, and the later regexes cost a call per piece, of which there
# are many (SmolLM2's first regex isolates every digit). At most 4 Mi characters are kept; a
# longer piece costs one call for many characters.
PIECE_CACHE_ENTRIES = 1 << 12
PIECE_CACHE_CHARS = 1024


def token_ids(tokens: list[str]) -> dict[str, int]:
    return {text: i for i, text in enumerate(tokens)}


def special_texts(vocab: GgufVocab) -> tuple[dict[str, int], dict[str, int]]:
    """(control and unknown, user-defined) token texts matched before BPE."""
    control, user = {}, {}
    for i, (text, kind) in enumerate(zip(vocab.tokens, vocab.token_type.tolist())):
        if kind in (CONTROL, UNKNOWN):
            control[text] = i
        elif kind == USER_DEFINED:
            user[text] = i
    return control, user


class GgufBpeTokenizer(Tokenizer):
    kind = "gguf-bpe"

    def __init__(self, vocab: GgufVocab):
        self._pretokenize = PreTokenizer(vocab.pre)
        ids = token_ids(vocab.tokens)
        kinds = vocab.token_type.tolist()
        pieces = [self._piece(text, kind) for text, kind in zip(vocab.tokens, kinds)]
        whole_word = None
        if vocab.pre in IGNORE_MERGES:
            whole_word = {pieces[i]: i for i, kind in enumerate(kinds) if kind == NORMAL}
        self._merger = BpeMerger(ids, vocab.merges, [ids.get(c, -1) for c in BYTE_CHARS],
                                 whole_word)
        self._splitter = SpecialSplitter(*special_texts(vocab), vocab.rstrip_ids)
        self._piece_ids: dict[str, list[int]] = {}
        encode_pieces = self._encode_staged if self._pretokenize.staged else self._merger.encode_chunks
        self._recent = RecentTexts(self._pretokenize.pieces, encode_pieces)
        super().__init__(pieces=pieces, special=vocab.special_ids, breaks=vocab.break_ids,
                         bos_id=vocab.bos_id, eos_id=vocab.eos_id, eot_ids=eot_ids(vocab),
                         add_bos=vocab.add_bos, add_eos=vocab.add_eos,
                         chat_template=vocab.chat_template)

    @staticmethod
    def _piece(text: str, kind: int) -> bytes:
        if kind == UNUSED:
            return b""  # llama.cpp prints nothing for these
        raw = text_to_bytes(text) if kind == NORMAL else None
        return raw if raw is not None else text.encode("utf-8", "surrogateescape")

    def _encode_text(self, text: str, parse_special: bool) -> list[int]:
        ids = []
        for fragment in self._splitter.split(text, parse_special):
            if isinstance(fragment, int):
                ids.append(fragment)
            else:
                ids += self._recent.encode(fragment)
        return ids

    def _encode_staged(self, pieces: list[str]) -> list[int]:
        """A piece's ids depend on the piece alone (the later regexes and the merges see
        nothing else), so remembering them changes no id."""
        ids, known = [], self._piece_ids
        for piece in pieces:
            piece_ids = known.get(piece)
            if piece_ids is None:
                piece_ids = self._merger.encode_chunks(self._pretokenize.chunks(piece))
                if len(piece) <= PIECE_CACHE_CHARS:
                    if len(known) >= PIECE_CACHE_ENTRIES:
                        known.clear()
                    known[piece] = piece_ids
            ids += piece_ids
        return ids
