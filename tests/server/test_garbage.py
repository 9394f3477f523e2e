"""orcd/server/garbage.py: the young generation, when near its threshold, is collected between
jobs, so that the next request runs without a collection; CPython's own choice of generation;
nothing when the collector is off."""
import gc
import threading

import pytest

from orcd.server import garbage, jobs
from served import sse

JOB = {"job_id": "j1", "prompt": "Hello world", "max_tokens": 4, "temperature": 0}
YOUNG = 10_000  # a threshold no test allocates near by accident


@pytest.fixture
def collections():
    """The generations collected while the test runs, with the young threshold at YOUNG (the
    older ones at CPython's defaults); settings restored afterwards."""
    seen = []

    def record(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.set_threshold(YOUNG, 10, 10)
    gc.collect()
    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


def young_count_at(target: int) -> list:
    """Container objects kept alive until the young generation's count is `target`."""
    return [[] for _ in range(max(0, target - gc.get_count()[0]))]


def test_nothing_is_collected_while_the_young_generation_has_room(collections):
    keep = young_count_at(YOUNG - 2 * garbage.HEADROOM)
    assert garbage.collect_between_jobs() is None
    assert collections == [] and keep


def test_a_young_generation_near_its_threshold_is_collected(collections):
    keep = young_count_at(YOUNG - garbage.HEADROOM // 2)
    assert garbage.collect_between_jobs() == 0
    assert collections == [0] and gc.get_count()[0] < garbage.HEADROOM and keep


@pytest.mark.parametrize("older", [1, 2])
def test_an_older_generation_past_its_threshold_is_taken_with_it(collections, older):
    """As CPython's collection would: generation g's count is the collections of g - 1 since
    its own last one."""
    for _ in range(11):
        gc.collect(older - 1)
    collections.clear()
    keep = young_count_at(YOUNG - garbage.HEADROOM // 2)
    assert garbage.collect_between_jobs() == older
    assert collections == [older] and keep


def test_a_disabled_collector_stays_off(collections):
    gc.disable()
    keep = young_count_at(YOUNG - garbage.HEADROOM // 2)
    assert garbage.collect_between_jobs() is None
    assert collections == [] and keep


def test_over_many_requests_every_collection_runs_at_a_job_s_end(serve, monkeypatch):
    """CPython's default thresholds and 30 requests one after another, each leaving cycles
    behind (the app's and the test client's): every collection runs in the engine thread once
    a job's last token is out and before its end is, none on a request's way. Without the
    collection at a job's end, the young generation passes its threshold on a request's way
    every few requests."""
    async def check(s):
        at_end, where, tokens_out = [], [], []

        def record(phase, info):
            if phase == "start":
                where.append(bool(at_end) and at_end[-1] == threading.get_ident())

        def collect_at_end():
            job = s.state.runner.job
            tokens_out.append((job.tokens_seen, job.ended))
            at_end.append(threading.get_ident())
            try:
                garbage.collect_between_jobs()
            finally:
                at_end.append(None)

        monkeypatch.setattr(jobs, "collect_between_jobs", collect_at_end)
        thresholds = gc.get_threshold()
        gc.set_threshold(700, 10, 10)
        gc.collect()  # as the worker starts: its load frozen
        gc.callbacks.append(record)
        try:
            for n in range(30):
                events = sse(await (await s.client.post("/execute", json={**JOB, "job_id": f"j{n}"})).get_data())
                assert events[-1][0] == "end"
                assert tokens_out[-1] == (sum(kind == "token" for kind, _ in events), False)
        finally:
            gc.callbacks.remove(record)
            gc.set_threshold(*thresholds)
        assert where and all(where)
    serve(check)
