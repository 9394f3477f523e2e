"""Server-Sent Events framing: `event: <type>` and one `data: <json>` line per frame."""
from __future__ import annotations

import json

# One encoder for every frame: json.dumps with an option builds a new one per call, and frames
# are made per token. It escapes newlines inside strings, so a payload is one data line.
encode_json = json.JSONEncoder(ensure_ascii=False).encode


def frame(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {encode_json(data)}\n\n".encode("utf-8")


def data_frame(payload: str) -> bytes:
    """An unnamed frame, as OpenAI's streaming API sends them (`data: ...` only)."""
    return f"data: {payload}\n\n".encode("utf-8")
