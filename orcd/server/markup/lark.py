"""Pieces of the Lark grammars that hold a required or named call (orcd/engine/grammar.py)."""
from __future__ import annotations

import json


def token(text: str, tokenizer) -> str:
    """A Lark literal of `text`; a special token of its own (Qwen's <tool_call>, harmony's
    <|channel|>) is named by its id, as the model writes it, not spelled in characters."""
    ids = tokenizer.encode(text, add_special=False, parse_special=True)
    if len(ids) == 1 and tokenizer.is_break(ids[0]):
        return f"<[{ids[0]}]>"
    return json.dumps(text)
