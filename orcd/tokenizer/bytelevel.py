"""GPT-2's byte-level alphabet: each byte is a printable character in token texts
(space is "Ġ", newline "Ċ"), so BPE tokens are strings and every byte has a token."""
from __future__ import annotations

import regex


def _byte_chars() -> list[str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, shift = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + shift))
            shift += 1
    return chars


BYTE_CHARS: list[str] = _byte_chars()
_TO_LATIN1 = str.maketrans({c: chr(b) for b, c in enumerate(BYTE_CHARS)})
_NOT_BYTE_LEVEL = regex.compile("[^" + "".join(map(regex.escape, BYTE_CHARS)) + "]")


def text_to_bytes(token_text: str) -> bytes | None:
    """The bytes a token text stands for; None if it is not byte-level text."""
    if _NOT_BYTE_LEVEL.search(token_text):
        return None
    return token_text.translate(_TO_LATIN1).encode("latin-1")
