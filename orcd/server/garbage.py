"""CPython's cycle collector kept off a request's path (what the load made is frozen, so a full
collection does not walk it: orcd/server/run.py).

The young generation is collected when its count (container objects allocated, less those
freed, since its last collection) passes a threshold, 700 by default. Each request leaves a few
dozen objects in cycles behind it (hypercorn's connection, werkzeug's URL matcher: 48 for a
request on a connection of its own), and a request allocates most on its way to its first
token, so that is where the count passed the threshold: about 1 request in 14, for 120-300 µs
(bench/host_path.py on the 2-core dev box). At a job's end, once its last token has been sent
and before its end is (so a client cannot have sent its next request yet: collected once the
worker had sent the end, it met that request on 4-5 of 42), a young generation within HEADROOM
of its threshold is collected (or the older generation CPython would take with it), and the
next request starts with room for its own allocations. CPython's collection stays on for
anything else (a long job, requests queued back to back): memory stays bounded as before.
"""
from __future__ import annotations

import gc

# How far a request raises the young generation's count, start to end, with room to spare:
# 150-300 through /execute, /v1/completions and /v1/chat/completions (Quart's test client).
HEADROOM = 400


def collect_between_jobs() -> int | None:
    """Collect now what CPython's collection would take once the young generation passes its
    threshold, if it is within HEADROOM of it; the generation collected, or None."""
    if not gc.isenabled():
        return None
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if thresholds[0] == 0 or counts[0] + HEADROOM <= thresholds[0]:
        return None
    # CPython's choice: the oldest generation whose count (collections of the one below it
    # since its own last) is past its threshold. It also leaves out the oldest one while its
    # survivors have grown by less than a quarter since it last ran, which Python does not
    # expose; here the oldest is taken about every 120th time, at a job's end, and walks what was
    # not frozen (1,500 objects after 400 requests of 300 random words: 0.5-0.8 ms).
    generation = max(g for g in range(3) if g == 0 or counts[g] > thresholds[g])
    gc.collect(generation)
    return generation
