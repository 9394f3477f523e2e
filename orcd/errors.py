"""The stable error codes of SPEC.md §3: defined once here for all Python code.

Every error a client or operator can see is an OrcdError with a code from CODES; the HTTP
layer turns it into `{"code", "message", "retriable"}` with the status given here.
"""
from __future__ import annotations

# code -> (HTTP status, retriable)
CODES: dict[str, tuple[int, bool]] = {
    "INVALID_REQUEST": (400, False),
    "UNAUTHORIZED": (401, False),
    "WORKER_BUSY": (503, True),
    "VRAM_OOM": (503, True),
    "CUDA_ERROR": (500, False),
    "INFERENCE_TIMEOUT": (504, False),
    "CANCELLED": (499, False),
    "MODEL_LOAD_FAILED": (500, False),
    "INSUFFICIENT_VRAM": (500, False),
    "INTERNAL": (500, False),
}


class OrcdError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None, retriable: bool | None = None):
        """`retriable` overrides the code's own where the cause decides it: a job cancelled
        because the worker shuts down may run elsewhere, one cancelled by its client not."""
        super().__init__(message)
        if code is not None:
            if code not in CODES:
                raise ValueError(f"unknown error code {code!r}")
            self.code = code
        self._retriable = retriable

    @property
    def message(self) -> str:
        return str(self)

    @property
    def http_status(self) -> int:
        return CODES[self.code][0]

    @property
    def retriable(self) -> bool:
        return CODES[self.code][1] if self._retriable is None else self._retriable

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "retriable": self.retriable}


class InvalidRequest(OrcdError):
    code = "INVALID_REQUEST"


def invalid(field: str, why: str) -> InvalidRequest:
    """An INVALID_REQUEST whose message starts with the field; `.field` keeps it for OpenAI's `param`."""
    error = InvalidRequest(f"{field}: {why}")
    error.field = field
    return error


class ContextOverflow(InvalidRequest):
    """The prompt leaves no room to generate; OpenAI clients know it as context_length_exceeded.
    `field` names what the client sent: the prompt, or the chat messages it was rendered from."""

    def __init__(self, field: str, tokens: int, ctx: int):
        super().__init__(f"{field}: {tokens} tokens after tokenization; this model's maximum "
                         f"context length is {ctx} (--ctx), so a prompt takes 1 to {ctx - 1}")
        self.field, self.tokens, self.ctx = field, tokens, ctx


class Unauthorized(OrcdError):
    code = "UNAUTHORIZED"


class WorkerBusy(OrcdError):
    code = "WORKER_BUSY"


class VramOom(OrcdError):
    code = "VRAM_OOM"


class CudaError(OrcdError):
    code = "CUDA_ERROR"


class InferenceTimeout(OrcdError):
    code = "INFERENCE_TIMEOUT"


class Cancelled(OrcdError):
    code = "CANCELLED"


class ModelLoadError(OrcdError):
    code = "MODEL_LOAD_FAILED"


class InsufficientVram(OrcdError):
    code = "INSUFFICIENT_VRAM"


class InternalError(OrcdError):
    code = "INTERNAL"
