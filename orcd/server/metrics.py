"""Prometheus text exposition (format 0.0.4) of the worker's counters, written by hand
because it is a few lines of text and not worth a dependency."""
from __future__ import annotations

import bisect
import time

# Seconds; the low buckets matter because a GPU decode step is about a millisecond.
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITL_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OUTCOMES = ("ok", "error", "cancelled", "rejected")


class Histogram:
    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def lines(self, name: str) -> list[str]:
        out, cumulative = [], 0
        for bound, count in zip(self.bounds, self.counts):
            cumulative += count
            out.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
        cumulative += self.counts[-1]
        out += [f'{name}_bucket{{le="+Inf"}} {cumulative}',
                f"{name}_sum {self.sum:.6f}", f"{name}_count {cumulative}"]
        return out


class Metrics:
    """Counters updated on the event loop (the token histograms on the engine thread);
    rendered on GET /metrics."""

    def __init__(self):
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.requests = dict.fromkeys(OUTCOMES, 0)
        self.tokens_generated = 0
        self.prompt_tokens = 0
        self.cached_prompt_tokens = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def render(self, vram_bytes: int, busy: bool, queue_depth: int) -> str:
        lines = [
            "# HELP orcd_vram_bytes Device memory held by the worker.",
            "# TYPE orcd_vram_bytes gauge",
            f"orcd_vram_bytes {vram_bytes}",
            "# HELP orcd_requests_total Generation requests by outcome.",
            "# TYPE orcd_requests_total counter",
            *(f'orcd_requests_total{{outcome="{k}"}} {v}' for k, v in self.requests.items()),
            "# HELP orcd_tokens_generated_total Tokens generated.",
            "# TYPE orcd_tokens_generated_total counter",
            f"orcd_tokens_generated_total {self.tokens_generated}",
            "# HELP orcd_prompt_tokens_total Prompt tokens processed.",
            "# TYPE orcd_prompt_tokens_total counter",
            f"orcd_prompt_tokens_total {self.prompt_tokens}",
            "# HELP orcd_prompt_tokens_cached_total Prompt tokens whose KV rows the prompt cache held.",
            "# TYPE orcd_prompt_tokens_cached_total counter",
            f"orcd_prompt_tokens_cached_total {self.cached_prompt_tokens}",
            "# HELP orcd_time_to_first_token_seconds From request accepted to first token.",
            "# TYPE orcd_time_to_first_token_seconds histogram",
            *self.ttft.lines("orcd_time_to_first_token_seconds"),
            "# HELP orcd_inter_token_seconds Time between consecutive tokens.",
            "# TYPE orcd_inter_token_seconds histogram",
            *self.itl.lines("orcd_inter_token_seconds"),
            "# HELP orcd_uptime_seconds Seconds since the worker started.",
            "# TYPE orcd_uptime_seconds gauge",
            f"orcd_uptime_seconds {self.uptime():.3f}",
            "# HELP orcd_busy 1 while a job runs.",
            "# TYPE orcd_busy gauge",
            f"orcd_busy {int(busy)}",
            "# HELP orcd_queue_depth OpenAI requests waiting for the job slot.",
            "# TYPE orcd_queue_depth gauge",
            f"orcd_queue_depth {queue_depth}",
        ]
        return "\n".join(lines) + "\n"
