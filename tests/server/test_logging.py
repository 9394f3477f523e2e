"""Narration lines: JSON, the required fields, prompts only when asked."""
import io
import json

import pytest

from orcd.logging import Narrator


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_fields_and_job_id():
    out = io.StringIO()
    n = Narrator("w-1", "/m.gguf", 0, stream=out)
    n.event("startup", "starting")
    n.event("execute_start", "go", job_id="j", prompt="secret", prompt_tokens=3)
    first, second = lines(out)
    assert list(first) == ["ts", "level", "event", "worker_id", "model_ref", "gpu_device", "msg"]
    assert first["ts"].endswith("Z") and first["event"] == "startup"
    assert second["job_id"] == "j" and second["prompt_tokens"] == 3
    assert "prompt" not in second


def test_prompts_with_log_prompts():
    out = io.StringIO()
    Narrator("w", "m", 0, log_prompts=True, stream=out).event("execute_end", "done", job_id="j", text="hi")
    assert lines(out)[0]["text"] == "hi"


def test_unknown_event_is_a_bug():
    with pytest.raises(ValueError):
        Narrator("w", "m", 0, stream=io.StringIO()).event("bogus", "x")


def test_error_and_progress_without_terminal():
    out = io.StringIO()
    n = Narrator("w", "m", 1, stream=out)
    n.load_progress(50)
    n.error("bad", code="VRAM_OOM", job_id="j")
    progress, error = lines(out)
    assert progress["percent"] == 50 and progress["event"] == "model_load_progress"
    assert (error["level"], error["code"], error["gpu_device"]) == ("error", "VRAM_OOM", 1)


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_is_cleared_before_the_next_line():
    out = Tty()
    n = Narrator("w", "m", 0, stream=out)
    n.load_progress(25)
    assert out.getvalue().rstrip().endswith("25%")
    n.event("model_load_complete", "done")
    last = out.getvalue().split("\r\033[K")[-1]
    assert json.loads(last)["event"] == "model_load_complete"


@pytest.fixture
def narrated_everything():
    """narrate_everything on a fresh narrator; the process's hooks are restored afterwards."""
    import logging
    import sys
    import threading
    import warnings
    from orcd.logging import narrate_everything
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, threading.excepthook, sys.unraisablehook)
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        narrate_everything(Narrator("w", "m", 0, stream=out))
        yield out
    logging.captureWarnings(False)
    root.handlers[:], root.level = saved[0], saved[1]
    threading.excepthook, sys.unraisablehook = saved[2], saved[3]


def test_library_warnings_logs_and_thread_failures_are_narration_lines(narrated_everything, capsys):
    import logging
    import threading
    import numpy as np
    np.float32(3e38) * np.float32(10)  # NumPy's RuntimeWarning: overflow
    logging.getLogger("hypercorn.error").exception("Error in ASGI Framework", exc_info=ValueError("boom"))
    thread = threading.Thread(target=lambda: 1 / 0, name="t-1")
    thread.start()
    thread.join()
    events = lines(narrated_everything)
    assert [e["event"] for e in events] == ["error"] * 3
    assert "overflow" in events[0]["msg"] and events[0]["level"] == "warning"
    assert events[1]["logger"] == "hypercorn.error" and "ValueError: boom" in events[1]["traceback"]
    assert "t-1 failed: ZeroDivisionError" in events[2]["msg"]
    assert capsys.readouterr().err == ""  # nothing raw on stderr
