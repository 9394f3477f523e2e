"""Server-Sent Events framing: `event: <type>` and one `data: <json>` line per frame."""
from __future__ import annotations

import json


def frame(event: str, data: dict) -> bytes:
    # json.dumps escapes newlines inside strings, so the payload is always a single data line.
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


def data_frame(payload: str) -> bytes:
    """An unnamed frame, as OpenAI's streaming API sends them (`data: ...` only)."""
    return f"data: {payload}\n\n".encode("utf-8")
