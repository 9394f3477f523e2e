"""Detokenizing one id at a time into complete UTF-8 text (SPEC §2 token events)."""
from __future__ import annotations

import codecs


class StreamDecoder:
    """feed(id) returns the text that became complete with that token: the bytes of an
    unfinished code point are held until a later token completes them; bytes that can never
    form a code point become U+FFFD exactly as in a whole decode. Concatenating every feed()
    and flush() equals decode() of the same ids.

    A SentencePiece vocabulary with add_space_prefix puts a space before text that starts
    the input or follows a special token; decode() removes it again. The stream removes it
    after special tokens, and at the start only with strip_leading_space=True: text that
    continues a prompt (generation) keeps its first space, which is real there."""

    def __init__(self, tokenizer, skip_special: bool = False, strip_leading_space: bool = False):
        self._tokenizer = tokenizer
        self._skip_special = skip_special
        self._strip_next = strip_leading_space and tokenizer.strips_leading_space
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        tok = self._tokenizer
        piece = tok.piece_bytes(token_id)
        if tok.is_break(token_id):
            self._strip_next = tok.strips_leading_space
            if self._skip_special and tok.is_special(token_id):
                return ""
        elif self._strip_next:
            self._strip_next = False
            if piece.startswith(b" "):
                piece = piece[1:]
        return self._utf8.decode(piece)

    def flush(self) -> str:
        """The text still held: an unfinished code point at the end becomes U+FFFD."""
        return self._utf8.decode(b"", final=True)
