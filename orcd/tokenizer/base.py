"""What every tokenizer backend shares: BOS/EOS, special-token splitting, decoding from
per-token bytes, streaming, chat templates."""
from __future__ import annotations

import regex

from orcd.errors import InvalidRequest
from orcd.tokenizer.chat import ChatTemplate
from orcd.tokenizer.stream import StreamDecoder

_SURROGATE = regex.compile(r"[\ud800-\udfff]")
_LEADING_SPACE = regex.compile(r"^\p{White_Space}+")
MAX_SPECIAL_STARTS = 4  # first characters of special tokens checked one by one (SpecialSplitter)


def well_formed(text: str) -> str:
    """Text that has a UTF-8 encoding: a lone surrogate (possible in JSON "\\ud800")
    becomes U+FFFD, as a UTF-8 client would have sent it. ASCII text (str knows it without a
    look) is not encoded to find out."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


class SpecialSplitter:
    """Cuts text at special-token texts, longest first where they overlap (llama.cpp
    tokenizer_st_partition). With parse_special=False only user-defined tokens are cut,
    as both llama.cpp and Hugging Face do. After an rstrip token the whitespace that
    follows is dropped (Unicode White_Space, as `tokenizers` does)."""

    def __init__(self, control: dict[str, int], user_defined: dict[str, int],
                 rstrip: frozenset[int] = frozenset()):
        self._ids = {**control, **user_defined}
        self._all = self._pattern(self._ids)
        self._user = self._pattern(user_defined)
        self._all_starts = self._starts(self._ids)
        self._user_starts = self._starts(user_defined)
        self._rstrip = rstrip

    @staticmethod
    def _pattern(texts):
        if not texts:
            return None
        alternatives = sorted(texts, key=len, reverse=True)
        return regex.compile("(" + "|".join(map(regex.escape, alternatives)) + ")")

    @staticmethod
    def _starts(texts) -> tuple[str, ...] | None:
        """The characters the texts start with, when they are few (every special token of the
        target vocabularies starts with "<"): a text holding none of them is looked through
        with str's own search rather than the pattern (11,000 characters: 0.1 us, not 3)."""
        starts = {t[:1] for t in texts}
        return tuple(starts) if len(starts) <= MAX_SPECIAL_STARTS and "" not in starts else None

    def split(self, text: str, parse_special: bool) -> list[str | int]:
        """Text fragments (non-empty str) and special-token ids, in order."""
        pattern = self._all if parse_special else self._user
        starts = self._all_starts if parse_special else self._user_starts
        if pattern is None or (starts is not None and not any(c in text for c in starts)):
            return [text] if text else []
        out = []
        for i, part in enumerate(pattern.split(text)):
            if i % 2:
                out.append(self._ids[part])
                continue
            if out and out[-1] in self._rstrip:
                part = _LEADING_SPACE.sub("", part)
            if part:
                out.append(part)
        return out


class Tokenizer:
    """encode(text) -> ids and decode(ids) -> text over a table of per-token bytes; the
    backends (bpe.py, spm.py, hf.py) supply the pieces and _encode_text."""

    kind: str  # "gguf-bpe" | "gguf-spm" | "hf-json"

    def __init__(self, *, pieces: list[bytes], special: set[int], breaks: set[int],
                 bos_id: int | None, eos_id: int | None, eot_ids: set[int], add_bos: bool,
                 add_eos: bool, chat_template: str | None, strips_leading_space: bool = False):
        self.vocab_size = len(pieces)
        self._pieces = pieces
        self._special = special
        self._breaks = breaks
        self.bos_id, self.eos_id = bos_id, eos_id
        self.eot_ids = set(eot_ids)
        self.add_bos, self.add_eos = add_bos, add_eos
        self.strips_leading_space = strips_leading_space
        self.chat_template = None
        if chat_template:
            self.chat_template = ChatTemplate(chat_template, self._text_of(bos_id),
                                              self._text_of(eos_id))

    def _text_of(self, token_id) -> str:
        if token_id is None:
            return ""
        return self._pieces[token_id].decode("utf-8", "replace")

    def _encode_text(self, text: str, parse_special: bool) -> list[int]:
        raise NotImplementedError

    def encode(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        ids = self._encode_text(well_formed(text), parse_special)
        if add_special and self.add_bos and self.bos_id is not None:
            ids.insert(0, self.bos_id)
        if add_special and self.add_eos and self.eos_id is not None:
            ids.append(self.eos_id)
        return ids

    def is_special(self, token_id: int) -> bool:
        """Control and unknown tokens: dropped by decode(skip_special=True)."""
        return token_id in self._special

    def is_break(self, token_id: int) -> bool:
        """Tokens matched before the text is tokenized (special and user-defined): the text
        after one is encoded as if it started the input."""
        return token_id in self._breaks

    def piece_bytes(self, token_id: int) -> bytes:
        """The bytes token_id stands for; a piece may end inside a code point."""
        return self._pieces[token_id]

    def decode(self, ids, skip_special: bool = False) -> str:
        data, strip = [], self.strips_leading_space
        for i in ids:
            piece = self._pieces[i]
            if i in self._breaks:
                strip = self.strips_leading_space
                if skip_special and i in self._special:
                    continue
            elif strip:
                strip = False
                if piece.startswith(b" "):
                    piece = piece[1:]
            data.append(piece)
        return b"".join(data).decode("utf-8", "replace")

    def stream_decoder(self, skip_special: bool = False,
                       strip_leading_space: bool = False) -> StreamDecoder:
        return StreamDecoder(self, skip_special, strip_leading_space)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True,
                            **extra) -> str:
        if self.chat_template is None:
            raise InvalidRequest("messages: this model has no chat template "
                                 "(tokenizer.chat_template); send a raw prompt instead")
        return self.chat_template.render(messages, add_generation_prompt, **extra)
