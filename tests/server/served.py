"""Helpers of the server tests: an app over the real engine in one event loop, and SSE parsing."""
import concurrent.futures
import io
import json

from orcd.logging import Narrator
from orcd.server.app import create_app
from orcd.server.state import ServerState

CTX = 256
LONG_PROMPT = "Once upon a time"


class Served:
    """An app over the real engine, inside one event loop; `log` holds its narration."""

    def __init__(self, engine, timeout_sec: float = 60.0, prompt_cache: bool = True,
                 max_tokens_out: int = 512, ctx: int = CTX, **queue):
        self.log = io.StringIO()
        self.state = ServerState(engine, Narrator("w-test", "tiny", 0, stream=self.log),
                                 concurrent.futures.ThreadPoolExecutor(1), worker_id="w-test",
                                 gpu_device=0, ctx=ctx, max_tokens_out=max_tokens_out,
                                 timeout_sec=timeout_sec, prompt_cache=prompt_cache, **queue)
        self.app = create_app(self.state)
        self.client = self.app.test_client()

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


def sse(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in raw.decode("utf-8").split("\n\n"):
        if block:
            event, data = block.split("\n")
            out.append((event.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


async def chat_chunks(client, body: dict) -> list[dict]:
    """The chunks of a streamed /v1/chat/completions answer, [DONE] left out."""
    r = await client.post("/v1/chat/completions", json=body)
    return [json.loads(b.removeprefix("data: ")) for b in (await r.get_data()).decode().split("\n\n")
            if b and b != "data: [DONE]"]
