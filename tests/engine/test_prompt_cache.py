"""The prompt cache on both engines (Engine.cached_ids, reusable_prefix, generate's n_cached):
a job that keeps the previous job's rows gives the ids a whole prefill gives, and a job that
ends early or fails leaves only the rows it really wrote, which the next job's ids prove.
Each test runs on the CPU engine and, marked `gpu`, on the CUDA engine.

Kept rows of prompt tokens come from prefill, as a whole prefill would write them. Kept rows
of generated tokens come from decode steps: the NumPy engine computes those as prefill does,
but the CUDA engine's decode multiplies 8-bit activations (matvec) where prefill multiplies
FP16 ones (matmul), so there the two runs may part at a near-tie (same_ids)."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import orcd.engine.cpu as cpu
from orcd.engine import create_engine
from orcd.engine.cpu import CpuEngine
from orcd.engine.sampling import SamplingParams
from orcd.errors import Cancelled, InternalError
from orcd.testing.oracles import top2_margin
from orcd.testing.parity import tolerance
from orcd.testing.synth import write_model

GREEDY = SamplingParams(temperature=0.0)
SEEDED = SamplingParams(temperature=0.9, top_p=0.95, seed=1234)
DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("cache") / "llama.gguf", "llama", quant="Q8_0", seed=3)


def loaded(device, path, ctx):
    e = create_engine(device)
    e.load(path, ctx)
    yield e
    e.close()


@pytest.fixture(scope="module", params=DEVICES)
def engine(request, tiny_path):
    yield from loaded(request.param, tiny_path, 512)


@pytest.fixture(scope="module", params=DEVICES)
def smollm2(request, smollm2_path):
    yield from loaded(request.param, smollm2_path, 1024)


def generate(engine, prompt, params=GREEDY, max_tokens=12, n_cached=0, cancel=None):
    return list(engine.generate(prompt, params, max_tokens, set(), cancel or threading.Event(),
                                n_cached))


def cached_then_fresh(engine, prompt, params, max_tokens=12):
    """(ids reusing what the cache holds, ids of a whole prefill, rows reused)."""
    n = engine.reusable_prefix(prompt)
    cached = generate(engine, prompt, params, max_tokens, n)
    return cached, generate(engine, prompt, params, max_tokens, 0), n


def past(answer, *ids) -> list[int]:
    """ids without the answer's first: a prompt that leaves the answer there shares no row of it."""
    return [i for i in ids if i != answer[0]]


def same_ids(engine, prompt, cached, fresh) -> None:
    """Equal, or (CUDA, decode rows kept) equal up to a step whose best two logits lie within
    twice the parity tolerance, where the two rounding paths may pick either."""
    if cached == fresh:
        return
    assert engine.device == "cuda", (cached, fresh)
    k = next(i for i, (a, b) in enumerate(zip(cached, fresh)) if a != b)
    logits = engine.forward_logits(prompt + fresh[:k])[-1]
    assert top2_margin(logits) <= 2 * tolerance(logits), (k, cached, fresh)


def test_reusable_prefix_is_the_longest_shared_prefix_but_the_last_token():
    e = CpuEngine()
    assert e.reusable_prefix([1, 2, 3]) == 0  # nothing cached
    e.cached_ids = [1, 2, 3, 4, 5]
    assert e.reusable_prefix([1, 2, 3, 4, 5]) == 3  # the last two prompt tokens are always prefilled
    assert e.reusable_prefix([1, 2, 3, 4, 5, 6, 7]) == 5
    assert e.reusable_prefix([1, 2, 9, 4, 5, 6]) == 2
    assert e.reusable_prefix([7, 2, 3]) == 0
    assert e.reusable_prefix([1, 2]) == 0
    assert e.reusable_prefix([1]) == 0
    e.cached_ids = list(range(1000))
    for cut in (0, 1, 63, 64, 500, 998):
        assert e.reusable_prefix(list(range(cut)) + [-1] + list(range(cut + 1, 1200))) == cut


def random_turn(e, rng, values: int, cached: int, added: int) -> list:
    """Up to `cached` random ids (of `values` kinds) into e's cache; a prompt that keeps a
    random part of them, then up to `added` random ids."""
    e.cached_ids = [rng.randrange(values) for _ in range(rng.randrange(0, cached))]
    return e.cached_ids[:rng.randrange(0, len(e.cached_ids) + 1)] + \
        [rng.randrange(values) for _ in range(rng.randrange(0, added))]


def test_reusable_prefix_agrees_with_a_walk_id_by_id():
    """Prompts that leave the cache at every distance from a block edge (shared_prefix
    compares PREFIX_BLOCK ids at once), shorter and longer than it."""
    rng = random.Random(0)
    e = CpuEngine()
    for _ in range(300):
        prompt = random_turn(e, rng, 4, 1100, 600)
        limit = min(len(e.cached_ids), len(prompt) - 2)
        walked = 0
        while walked < limit and e.cached_ids[walked] == prompt[walked]:
            walked += 1
        assert e.reusable_prefix(prompt) == walked
        e._check_cached(prompt, walked)
        with pytest.raises(InternalError):
            e._check_cached(prompt, walked + 1)


def held(e, prompt, n) -> bool:
    try:
        e._check_cached(prompt, n)
        return True
    except InternalError:
        return False


def test_the_check_of_n_cached_by_the_last_match_agrees_with_comparing_the_ids():
    """_check_cached trusts reusable_prefix's answer for the very lists it was given: the same
    yes or no as comparing the ids (the prompt copied, so no answer is remembered for it), for
    every n around the match, and none once the cache's ids or the prompt's length changed."""
    rng = random.Random(1)
    e = CpuEngine()
    for _ in range(300):
        prompt = random_turn(e, rng, 3, 700, 300)
        n = e.reusable_prefix(prompt)
        for k in {-1, 0, 1, n - 1, n, n + 1, len(prompt)}:
            e.reusable_prefix(prompt)  # a refusal's message asks it again, for another list
            assert held(e, prompt, k) == held(e, list(prompt), k), (n, k)
        prompt.append(0)  # a longer list: compared again
        assert held(e, prompt, n + 1) == (0 < n + 1 <= min(len(e.cached_ids), len(prompt) - 2)
                                          and e.cached_ids[:n + 1] == prompt[:n + 1])
        e.reusable_prefix(prompt)
        e.cached_ids = list(e.cached_ids)  # another list: compared again
        e.cached_ids[:1] = [9]
        assert held(e, prompt, 1) == (len(prompt) >= 3 and e.cached_ids[:1] == prompt[:1])
    e.cached_ids = list(range(20))
    prompt = list(range(10))
    assert e.reusable_prefix(prompt) == 8  # all but the last two
    prompt.append(10)  # now 9 of them may come from the cache
    assert held(e, prompt, 9)


def test_shared_prefix_of_lists_equal_up_to_the_limit():
    """All of the limit shared, with either list as long as it or longer (one comparison)."""
    from orcd.engine.base import shared_prefix
    a = list(range(600))
    for b, limit in ((a[:], 600), (a + [1], 600), (a[:500], 500), (a[:300] + [0], 300)):
        assert shared_prefix(a, b, limit) == limit == shared_prefix(b, a, limit)
    assert shared_prefix(a, a[:599] + [0], 600) == 599


def test_a_list_of_ids_is_the_prompt_as_it_is():
    e = CpuEngine()
    e.ctx = 100
    ids = [1, 2, 3]
    assert e.prompt_ids(ids) is ids  # not copied: every step of a job reads the same list
    assert e.prompt_ids((1, 2, 3)) == [1, 2, 3] and e.prompt_ids(range(1, 4)) == [1, 2, 3]


@pytest.mark.parametrize("params", [GREEDY, SEEDED], ids=["greedy", "seeded"])
def test_a_longer_prompt_reuses_the_last_prompt(engine, params):
    prompt = list(range(40, 90))
    answer = generate(engine, prompt, params)
    assert engine.cached_ids[:len(prompt)] == prompt
    cached, fresh, n = cached_then_fresh(engine, prompt + past(answer, 7, 8, 9, 10), params)
    assert n == len(prompt) and cached == fresh


def test_a_conversation_reuses_the_prompt_and_the_answer(engine):
    prompt = list(range(100, 130))
    answer = generate(engine, prompt)
    assert engine.cached_ids == prompt + answer[:-1]  # the last id was sampled, never decoded
    turn = prompt + answer + [11, 12, 13]
    cached, fresh, n = cached_then_fresh(engine, turn, GREEDY)
    assert n == len(prompt) + len(answer) - 1  # all but the answer's last id
    same_ids(engine, turn, cached, fresh)


def test_a_seeded_conversation_samples_the_same_ids_on_the_cpu_engine(tiny_path):
    engine = create_engine("cpu")
    engine.load(tiny_path, 512)
    prompt = list(range(100, 130))
    answer = generate(engine, prompt, SEEDED)
    cached, fresh, n = cached_then_fresh(engine, prompt + answer + [11, 12, 13], SEEDED)
    assert n == len(prompt) + len(answer) - 1 and cached == fresh


def test_the_real_smollm2_answers_a_second_turn_the_same_with_the_cache(smollm2):
    tok = smollm2.tokenizer
    chat = [{"role": "user", "content": "Name a colour of the sky."}]
    first = tok.encode(tok.apply_chat_template(chat), add_special=True, parse_special=True)
    answer = generate(smollm2, first, GREEDY, 10)
    chat += [{"role": "assistant", "content": tok.decode(answer, skip_special=True)},
             {"role": "user", "content": "And of grass?"}]
    second = tok.encode(tok.apply_chat_template(chat), add_special=True, parse_special=True)
    cached, fresh, n = cached_then_fresh(smollm2, second, GREEDY, 10)
    assert n >= len(first) - 1
    same_ids(smollm2, second, cached, fresh)


def test_a_stopped_job_leaves_the_rows_it_decoded(engine):
    prompt = list(range(200, 240))
    stream = engine.generate(prompt, GREEDY, 50, set(), threading.Event())
    produced = [next(stream) for _ in range(5)]
    stream.close()  # as a matched stop string does; the CUDA loop may have gone further
    held = engine.cached_ids
    turn = prompt + produced + [5, 6]
    cached, fresh, n = cached_then_fresh(engine, turn, GREEDY)
    assert n >= len(prompt)
    same_ids(engine, turn, cached, fresh)
    assert held == (prompt + generate(engine, prompt, GREEDY, 50))[:len(held)]


def test_a_cancelled_job_leaves_a_true_prefix(engine):
    prompt = list(range(300, 330))
    answer = generate(engine, prompt)
    cancel = threading.Event()
    cancel.set()
    longer = prompt + past(answer, 1, 2, 3, 4)
    n = engine.reusable_prefix(longer)
    with pytest.raises(Cancelled):
        generate(engine, longer, n_cached=n, cancel=cancel)
    assert engine.reusable_prefix(longer) == n
    cached, fresh, _ = cached_then_fresh(engine, longer, GREEDY)
    assert cached == fresh


def test_more_cached_rows_than_the_cache_holds_are_refused(engine):
    generate(engine, [5, 6, 7])
    with pytest.raises(InternalError, match="cache"):
        generate(engine, [5, 6, 9, 10], n_cached=3)


def test_a_prefill_that_fails_midway_keeps_only_its_finished_chunks(tiny_path, monkeypatch):
    engine = create_engine("cpu")
    engine.load(tiny_path, 512)
    monkeypatch.setattr(cpu, "PREFILL_CHUNK", 16)
    calls, forward = [], cpu.forward

    def second_chunk_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("the second chunk does not fit")
        return forward(*args, **kwargs)

    prompt = list(range(20, 70))
    monkeypatch.setattr(cpu, "forward", second_chunk_fails)
    with pytest.raises(MemoryError):
        generate(engine, prompt)
    assert engine.cached_ids == prompt[:16]
    monkeypatch.setattr(cpu, "forward", forward)
    cached, fresh, n = cached_then_fresh(engine, prompt, GREEDY)
    assert n == 16 and cached == fresh


def test_the_cache_rows_equal_a_fresh_prefill(tiny_path):
    """The rows a conversation leaves are the rows one prefill of the same ids writes (up to
    float32 rounding of one-row and many-row products)."""
    engine = create_engine("cpu")
    engine.load(tiny_path, 512)
    prompt = list(range(10, 40))
    generate(engine, prompt, GREEDY, 8)
    kept = engine.cached_ids
    rows = len(kept)
    k, v = engine.cache.k[:, :, :rows].copy(), engine.cache.v[:, :, :rows].copy()
    generate(engine, kept + [1], GREEDY, 1)
    # float32 sums reassociated (one-row vs many-row BLAS kernels, which differ by CPU) over
    # 64- and 128-term dots, compounded through the layers: 1e-5 of the rows' largest value.
    for now, then in ((engine.cache.k[:, :, :rows], k), (engine.cache.v[:, :, :rows], v)):
        np.testing.assert_allclose(now, then, rtol=1e-5, atol=1e-5 * np.abs(then).max())


@pytest.fixture(scope="module")
def arch_paths(tmp_path_factory):
    made = {}

    def path(arch):
        if arch not in made:
            made[arch] = write_model(tmp_path_factory.mktemp("same") / f"{arch}.gguf", arch,
                                     quant="Q8_0", seed=5)
        return made[arch]
    return path


@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3", "gpt-oss"])
@pytest.mark.parametrize("device", DEVICES)
def test_the_same_seeded_request_twice_gives_the_same_ids(arch_paths, arch, device):
    """SPEC §8 with the cache on (features: "The same seed gives the same text"): the second run
    keeps all but the prompt's last two rows, which prefill computes as it did the first time,
    in the same kernels and the same order; prompts of one chunk, of a chunk and one row (no
    one-row tail chunk either), and past gpt-oss's sliding window."""
    e = next(loaded(device, arch_paths(arch), 1024))
    rng = np.random.default_rng(7)
    for length in (50, 513, 300):
        prompt = [int(i) for i in rng.integers(1, e.config.vocab_size, length)]
        first = generate(e, prompt, SEEDED, 12)
        n = e.reusable_prefix(prompt)
        assert n == length - 2
        assert generate(e, prompt, SEEDED, 12, n) == first, (arch, length)
    e.close()
