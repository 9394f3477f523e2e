"""Narration (SPEC §9): one JSON object per line on stderr, so an orchestrator can parse it.

Every line carries ts, level, event, worker_id, model_ref, gpu_device, msg, and job_id
inside a job. Prompts and generated text appear only when the operator asked for them.
"""
from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
import traceback

EVENTS = frozenset({
    "startup", "model_load_start", "model_load_progress", "model_load_complete", "ready",
    "execute_start", "execute_end", "cancel", "error", "residency_check_failed", "shutdown",
    "trace",  # debug: orcd serve --trace
    "request_rejected",
})
PROMPT_FIELDS = frozenset({"prompt", "text"})
BAR_WIDTH = 30


def utc_now_rfc3339() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Narrator:
    """Writes narration lines; safe to call from the engine thread and the event loop."""

    def __init__(self, worker_id: str, model_ref: str, gpu_device: int,
                 log_prompts: bool = False, stream=None):
        self.worker_id = worker_id
        self.model_ref = model_ref
        self.gpu_device = gpu_device
        self.log_prompts = log_prompts
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._bar_shown = False

    def event(self, event: str, msg: str, *, level: str = "info", job_id: str | None = None,
              **fields) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown narration event {event!r}")
        line = {"ts": utc_now_rfc3339(), "level": level, "event": event,
                "worker_id": self.worker_id, "model_ref": self.model_ref,
                "gpu_device": self.gpu_device}
        if job_id is not None:
            line["job_id"] = job_id
        line["msg"] = msg
        for key, value in fields.items():
            if key in PROMPT_FIELDS and not self.log_prompts:
                continue
            line[key] = value
        self._write(json.dumps(line, ensure_ascii=False) + "\n")

    def error(self, msg: str, *, code: str, level: str = "error", job_id: str | None = None,
              **fields) -> None:
        self.event("error", msg, level=level, job_id=job_id, code=code, **fields)

    def load_progress(self, percent: int) -> None:
        """The progress event, plus a bar redrawn in place when a person watches stderr."""
        self.event("model_load_progress", f"model load {percent}%", percent=percent)
        if self._is_terminal():
            filled = BAR_WIDTH * percent // 100
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            with self._lock:
                self.stream.write(f"loading {self.model_ref} [{bar}] {percent:3d}%")
                self.stream.flush()
                self._bar_shown = True

    def _is_terminal(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _write(self, text: str) -> None:
        with self._lock:
            if self._bar_shown:
                self.stream.write("\r\033[K")
                self._bar_shown = False
            self.stream.write(text)
            self.stream.flush()


class NarrationHandler(logging.Handler):
    """Library log records (hypercorn, Quart, asyncio, warnings) as narration lines."""

    def __init__(self, narrator: Narrator):
        super().__init__(logging.WARNING)
        self.narrator = narrator

    def emit(self, record: logging.LogRecord) -> None:
        fields = {"logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            fields["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        self.narrator.error(record.getMessage(), code="INTERNAL", level=record.levelname.lower(), **fields)


def narrate_everything(narrator: Narrator) -> None:
    """Route what libraries would write to stderr through the narrator, so the log stays
    one JSON object per line whatever happens: logging records, warnings (NumPy's among
    them), exceptions escaping a thread and unraisable exceptions."""
    root = logging.getLogger()
    root.handlers[:] = [NarrationHandler(narrator)]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)

    def thread_failed(args) -> None:
        where = args.thread.name if args.thread is not None else "a thread"
        narrator.error(f"{where} failed: {args.exc_type.__name__}: {args.exc_value}", code="INTERNAL",
                       traceback="".join(traceback.format_exception(args.exc_type, args.exc_value,
                                                                    args.exc_traceback)))

    def unraisable(args) -> None:
        narrator.error(f"{args.err_msg or 'exception ignored'}: {args.exc_type.__name__}: {args.exc_value}",
                       code="INTERNAL", level="warning")

    threading.excepthook = thread_failed
    sys.unraisablehook = unraisable
