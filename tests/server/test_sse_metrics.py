"""SSE framing and the Prometheus text."""
import json
import re

from orcd.server.metrics import Metrics
from orcd.server.sse import data_frame, frame


def test_frame_is_one_event_and_one_data_line():
    raw = frame("token", {"t": "a\nb\r\n€", "i": 3}).decode("utf-8")
    assert raw.endswith("\n\n")
    lines = raw[:-2].split("\n")
    assert lines[0] == "event: token" and len(lines) == 2
    assert json.loads(lines[1].removeprefix("data: ")) == {"t": "a\nb\r\n€", "i": 3}


def test_data_frame():
    assert data_frame("[DONE]") == b"data: [DONE]\n\n"


def test_metrics_text():
    m = Metrics()
    m.requests["ok"] += 2
    m.tokens_generated += 10
    m.ttft.observe(0.003)
    m.ttft.observe(0.3)
    m.itl.observe(0.001)
    text = m.render(vram_bytes=1234, busy=True, queue_depth=3)
    assert "orcd_vram_bytes 1234\n" in text and "orcd_busy 1\n" in text
    assert "orcd_queue_depth 3\n" in text
    assert 'orcd_requests_total{outcome="ok"} 2\n' in text
    assert "orcd_tokens_generated_total 10\n" in text
    assert 'orcd_time_to_first_token_seconds_bucket{le="0.005"} 1\n' in text
    assert 'orcd_time_to_first_token_seconds_bucket{le="0.25"} 1\n' in text
    assert 'orcd_time_to_first_token_seconds_bucket{le="0.5"} 2\n' in text
    assert 'orcd_time_to_first_token_seconds_bucket{le="+Inf"} 2\n' in text
    assert 'orcd_inter_token_seconds_bucket{le="0.001"} 1\n' in text  # le is inclusive
    assert "orcd_time_to_first_token_seconds_count 2\n" in text
    assert re.search(r"^orcd_uptime_seconds \d+\.\d+$", text, re.M)
    sample = re.compile(r'^[a-z_]+(\{[a-z]+="[^"]*"\})? -?[0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
