"""hf-json: a Hugging Face tokenizer.json run by the `tokenizers` library. Per-token bytes
for streaming come from the decoder the file declares (byte-level, or "▁" with <0xNN>
byte fallback)."""
from __future__ import annotations

import json

import tokenizers

from orcd.errors import ModelLoadError
from orcd.tokenizer.base import Tokenizer, well_formed
from orcd.tokenizer.bytelevel import text_to_bytes
from orcd.tokenizer.vocab import EOG_TEXTS, GgufVocab, eot_ids

SPACE = "\u2581"


def _decoder_steps(decoder: dict | None) -> list[dict]:
    if not decoder:
        return []
    if decoder.get("type") == "Sequence":
        return [s for d in decoder["decoders"] for s in _decoder_steps(d)]
    return [decoder]


class HfJsonTokenizer(Tokenizer):
    kind = "hf-json"

    def __init__(self, path, vocab: GgufVocab | None):
        try:
            self._hf = tokenizers.Tokenizer.from_file(str(path))
        except Exception as e:  # the library reports any malformed file as its own error
            raise ModelLoadError(f"{path}: not a usable tokenizer.json: {e}") from e
        config = json.loads(self._hf.to_str())
        steps = {s.get("type"): s for s in _decoder_steps(config.get("decoder"))}
        added = {t["id"]: t for t in config.get("added_tokens", [])}
        n = self._hf.get_vocab_size(with_added_tokens=True)
        if vocab is not None:  # the model may have more rows than the file names tokens
            n = max(n, len(vocab.tokens))
        pieces = [self._piece(i, added, steps) for i in range(n)]
        special = {i for i, t in added.items() if t.get("special")}
        if vocab is not None:
            bos, eos, eots = vocab.bos_id, vocab.eos_id, eot_ids(vocab)
            template = vocab.chat_template
        else:
            bos = eos = template = None
            eots = {i for i, t in added.items() if t["content"] in EOG_TEXTS}
        strip = (("Strip" in steps and steps["Strip"].get("start", 0) > 0)
                 or ("Metaspace" in steps
                     and steps["Metaspace"].get("prepend_scheme", "always") != "never"))
        super().__init__(pieces=pieces, special=special, breaks=set(added), bos_id=bos, eos_id=eos,
                         eot_ids=eots, add_bos=False, add_eos=False, chat_template=template,
                         strips_leading_space=strip)

    def _piece(self, token_id: int, added: dict, steps: dict) -> bytes:
        text = self._hf.id_to_token(token_id)
        if text is None:
            return b""
        if token_id in added:
            return text.encode("utf-8", "surrogateescape")
        if "ByteLevel" in steps:
            raw = text_to_bytes(text)
            if raw is not None:
                return raw
        if "ByteFallback" in steps and len(text) == 6 and text.startswith("<0x"):
            return bytes([int(text[3:5], 16)])
        if "Metaspace" in steps or "Replace" in steps:
            text = text.replace(SPACE, " ")
        return text.encode("utf-8", "surrogateescape")

    def encode(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        self._hf.encode_special_tokens = not parse_special
        return self._hf.encode(well_formed(text), add_special_tokens=add_special).ids
