"""The CUDA engine against the NumPy reference (orcd.reference, orcd.engine.sampling) on tiny
synthetic llama, qwen2, phi3 and gpt-oss files in every quant mix, and on the real SmolLM2
file. The tiny gpt-oss slides an 8-token window on its even layers, so prompts of 40 tokens
and more cross it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from orcd import _cuda, reference
from orcd.engine.cpu import CpuEngine
from orcd.engine.logprobs import Scoring
from orcd.engine.sampling import SamplingParams, sample
from orcd.errors import Cancelled, CudaError, InsufficientVram, InternalError
from orcd.models import ARCHITECTURES
from orcd.testing.parity import (Q8_1_ROUTER_TIE, check_greedy, check_logits, router_gaps,
                                 tolerance)
from orcd.testing.quant_mix import MIXES
from orcd.testing.synth import write_model

ROOT = Path(__file__).resolve().parents[2]
CTX = 256
GREEDY = SamplingParams(temperature=0.0)
FUSED = ("1", "persistent", "0")  # ORCD_FUSED: the fused kernels (default), one persistent kernel, step by step


def cuda_engine(path, ctx=CTX):
    from orcd.engine.cuda import CudaEngine
    engine = CudaEngine(0)
    engine.load(path, ctx)
    return engine


def generate(engine, prompt, params, max_tokens=64, stop_ids=frozenset()):
    return list(engine.generate(prompt, params, max_tokens, set(stop_ids), threading.Event()))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    made = {}

    def path(arch, mix="Q8_0"):
        if (arch, mix) not in made:
            made[arch, mix] = write_model(tmp_path_factory.mktemp("m") / f"{arch}-{mix}.gguf",
                                          arch, quant=mix)
        return made[arch, mix]
    return path


@pytest.fixture(params=FUSED, ids=lambda v: f"fused={v}")
def decode_path(request, monkeypatch):
    monkeypatch.setenv("ORCD_FUSED", request.param)  # read when a model is loaded
    return request.param


def reference_logits(path, ids, ctx=CTX):
    model = reference.load(path, ctx)
    return reference.forward(model, np.asarray(ids), reference.KVCache(model.config, ctx))


@pytest.mark.gpu
@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_teacher_forced_logits_match_reference(synth, arch, mix):
    path = synth(arch, mix)
    engine = cuda_engine(path)
    ids = np.random.default_rng(1).integers(0, engine.config.vocab_size, 40)
    check_logits(engine.forward_logits(ids), reference_logits(path, ids))
    engine.close()


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_long_prompt_crosses_attention_chunks(synth, arch):
    path = synth(arch)
    engine = cuda_engine(path)
    ids = np.random.default_rng(2).integers(0, engine.config.vocab_size, 200)
    check_logits(engine.forward_logits(ids), reference_logits(path, ids))


@pytest.mark.gpu
@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_greedy_decode_follows_reference(synth, arch, mix, decode_path):
    """Every generated id is the reference's argmax given the ids before it (or within the
    error allowed of it): decode path (fused or step by step, every weight format), KV cache
    and argmax sampler together."""
    check_greedy_decode(synth(arch, mix))


@pytest.mark.gpu
@pytest.mark.parametrize("mix", ["Q4_K_M", "Q5_1"])
def test_greedy_decode_on_the_plain_matvec_path(synth, mix, decode_path, monkeypatch):
    """ORCD_MATVEC=f32: quantized weights meet F32 activations, fused or step by step."""
    monkeypatch.setenv("ORCD_MATVEC", "f32")
    check_greedy_decode(synth("qwen2", mix))


def check_greedy_decode(path):
    """gpt-oss: decode's 8-bit activations may swap two experts whose router logits nearly tie
    (a discontinuity, as in llama.cpp), so a step may stray only where its routing is near a
    tie in some layer, and most steps must route clearly."""
    engine = cuda_engine(path)
    prompt = list(np.random.default_rng(3).integers(0, engine.config.vocab_size, 9))
    ids = generate(engine, prompt, GREEDY)
    assert len(ids) == 64
    seq = prompt + ids[:-1]
    want = reference_logits(path, seq)[len(prompt) - 1:]
    chosen = want[np.arange(len(ids)), ids]
    strays = chosen < want.max(-1) - 2 * tolerance(want)
    if engine.config.arch == "gpt-oss":
        gaps = router_gaps(reference.load(path, CTX), seq)[:, len(prompt) - 1:]
        tied = (gaps < Q8_1_ROUTER_TIE).any(axis=0)
        assert tied.sum() <= len(ids) // 4, f"{tied.sum()} of {len(ids)} steps route near a tie"
        strays &= ~tied
    assert not strays.any(), f"steps {np.flatnonzero(strays).tolist()} stray from the reference"


@pytest.mark.gpu
@pytest.mark.parametrize("chunk", ["128", "512", None], ids=lambda c: f"chunk={c or 'default'}")
@pytest.mark.parametrize("arch", ["llama", "gpt-oss"])
def test_prompt_longer_than_a_prefill_chunk(synth, arch, decode_path, chunk, monkeypatch):
    """600 prompt tokens are prefilled in passes of ORCD_PREFILL_CHUNK tokens over one KV cache:
    five of 128 (the last 88), two of 512 (512 + 88), or by default one."""
    if chunk:
        monkeypatch.setenv("ORCD_PREFILL_CHUNK", chunk)  # read when the engine is made
    path = synth(arch)
    engine = cuda_engine(path, ctx=1024)
    prompt = list(np.random.default_rng(4).integers(0, engine.config.vocab_size, 600))
    ids = generate(engine, prompt, GREEDY, 4)
    check_greedy(reference_logits(path, prompt + ids[:-1], ctx=1024)[len(prompt) - 1:], ids)


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ["qwen2", "gpt-oss"])
def test_decode_past_4096_positions(synth, arch, decode_path):
    """Over 32 attention splits of 128 positions: the fused attention's blocks take several
    (gpt-oss: its full-attention layers; the windowed ones read one or two splits)."""
    path = synth(arch)
    engine = cuda_engine(path, ctx=4352)
    prompt = list(np.random.default_rng(6).integers(0, engine.config.vocab_size, 4200))
    ids = generate(engine, prompt, GREEDY, 4)
    check_greedy(reference_logits(path, prompt + ids[:-1], ctx=4352)[len(prompt) - 1:], ids)


@pytest.mark.gpu
@pytest.mark.parametrize("matvec", ["f32", "q8_1"])
def test_smollm2_teacher_forced_and_greedy_64(smollm2_path, decode_path, matvec, monkeypatch):
    """Teacher-forced argmax equal at every position, and with float activations the 64
    greedy ids equal the CPU engine's. The default decode rounds activations to 8 bits (as
    llama.cpp does), which may flip a near-tie: there every id only has to be within the
    logit tolerance of the reference's best at its position."""
    monkeypatch.setenv("ORCD_MATVEC", matvec)  # read when the decode step is captured
    engine = cuda_engine(smollm2_path)
    prompt = engine.tokenizer.encode("The capital of France is")
    ids = generate(engine, prompt, GREEDY)
    seq = prompt + ids
    want = reference_logits(smollm2_path, seq)
    check_logits(engine.forward_logits(seq), want, True)
    if matvec == "f32":
        cpu = CpuEngine()
        cpu.load(smollm2_path, CTX)
        assert ids == generate(cpu, prompt, GREEDY)
    else:
        steps = want[len(prompt) - 1:-1]  # row k predicts ids[k]
        picked = steps[np.arange(len(ids)), ids]
        assert (picked >= steps.max(-1) - 2 * tolerance(want)).all()


PARAMS = [
    SamplingParams(temperature=1.0, seed=1),
    SamplingParams(temperature=0.7, top_p=0.9, seed=2),
    SamplingParams(temperature=1.3, top_k=40, seed=3),
    SamplingParams(temperature=0.9, min_p=0.05, seed=4),
    SamplingParams(temperature=1.0, top_k=50, top_p=0.95, min_p=0.02, repetition_penalty=1.3, seed=5),
    SamplingParams(temperature=0.0, repetition_penalty=1.5, seed=6),
    SamplingParams(temperature=2.0, top_p=0.5, repetition_penalty=0.8, seed=2**64 - 1),
]


@pytest.mark.gpu
@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_gpu_sampler_picks_the_reference_id(params):
    rng = np.random.default_rng(params.seed % 1000)
    for trial in range(40):
        vocab = int(rng.choice([7, 1000, 32064, 151936]))
        logits = (rng.standard_normal(vocab) * rng.uniform(0.5, 6)).astype(np.float32)
        history = rng.integers(0, vocab, int(rng.integers(0, 50)))
        step = int(rng.integers(0, 2**31))
        want = sample(logits, params, step, history)
        assert _cuda.sample_logits(logits, params, step, history) == want, (trial, vocab, step)


@pytest.mark.gpu
def test_sampled_ids_with_many_seeds():
    logits = np.random.default_rng(0).standard_normal(49152).astype(np.float32) * 3
    for seed in range(200):
        params = SamplingParams(temperature=0.8, top_p=0.95, seed=seed * 7919)
        assert _cuda.sample_logits(logits, params, seed, [1, 2, 3]) == sample(logits, params, seed, [1, 2, 3])


RUN_JOB = """
import json, sys, threading
from orcd.engine.cuda import CudaEngine
from orcd.engine.logprobs import Scoring
from orcd.engine.sampling import SamplingParams
from orcd.errors import OrcdError
engine = CudaEngine(0)
engine.load(sys.argv[1], 256)
out = {"after_load": engine.health()["vram_bytes_used"],
       "allocations": engine._model.stats()["allocations_made"], "jobs": []}
params = SamplingParams(temperature=0.8, top_k=40, seed=7)
score = sys.argv[2:] == ["score"]  # each job scores its prompt too (echo)
for _ in range(2):
    try:
        scoring = Scoring(with_prompt=True) if score else None
        ids = list(engine.generate([1, 5, 9, 13], params, 32, set(), threading.Event(),
                                   scoring=scoring))
        out["jobs"].append(ids)
    except OrcdError as e:
        out["jobs"].append(e.code)
    out.setdefault("vram_after_jobs", []).append(engine.health()["vram_bytes_used"])
print(json.dumps(out))
"""


def run_job(path, *args, **env):
    proc = subprocess.run([sys.executable, "-c", RUN_JOB, str(path), *args], cwd=ROOT,
                          capture_output=True, text=True, env=os.environ | env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ["qwen2", "gpt-oss"])
@pytest.mark.parametrize("fused", FUSED)
def test_same_ids_across_processes_with_and_without_cuda_graph(synth, arch, fused):
    path = synth(arch)
    first, second = run_job(path, ORCD_FUSED=fused), run_job(path, ORCD_FUSED=fused)
    plain = run_job(path, ORCD_CUDA_GRAPH="0", ORCD_FUSED=fused)
    serial = run_job(path, ORCD_OVERLAP="0", ORCD_FUSED=fused)  # kernels one after another
    unclustered = run_job(path, ORCD_CLUSTERS="0", ORCD_FUSED=fused)  # split sums via memory
    assert first["jobs"][0] == first["jobs"][1] == second["jobs"][0] == plain["jobs"][0]
    assert serial["jobs"][0] == first["jobs"][0] == unclustered["jobs"][0]
    assert len(first["jobs"][0]) == 32


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt-oss"])
@pytest.mark.parametrize("fused", ["1", "persistent"])
def test_fused_block_shapes_and_hidden_rounding_give_the_same_ids(synth, arch, fused):
    """The fused decode matvecs' warps per block (ORCD_FUSED_WARPS), rows loaded ahead or pair by
    pair (ORCD_FUSED_STREAM) and where the hidden vector is rounded to Q8_1 (ORCD_HIDDEN_Q8: once
    by gate/up, or by each ffn_down block as it stages it) change who computes what and when,
    never a bit of the ids."""
    path = synth(arch)
    default = run_job(path, ORCD_FUSED=fused)  # 8 warps, hidden rounded by ffn_down, streamed
    for env in ({"ORCD_FUSED_WARPS": "spread"}, {"ORCD_FUSED_WARPS": "2"}, {"ORCD_HIDDEN_Q8": "1"},
                {"ORCD_FUSED_STREAM": "0"}, {"ORCD_FUSED_FORMAT": "0"},
                {"ORCD_FUSED_WARPS": "spread", "ORCD_HIDDEN_Q8": "1", "ORCD_OVERLAP": "0"}):
        assert run_job(path, ORCD_FUSED=fused, **env)["jobs"] == default["jobs"], env


@pytest.mark.gpu
@pytest.mark.parametrize("arch, mix", [("qwen2", "Q4_0"), ("qwen2", "Q4_1"), ("qwen2", "Q5_0"),
                                       ("qwen2", "Q5_1"), ("llama", "Q4_K_M"),
                                       ("qwen2", "Q4_K_M"), ("gpt-oss", "MXFP4")])
def test_a_kernel_per_weight_format_gives_the_same_ids(synth, arch, mix):
    """ORCD_FUSED_FORMAT: a fused decode op whose parts share a format runs a kernel that holds
    the code of that format only (fused.cu); the same bits as the kernel that holds every
    format's, streamed or pair by pair. The Q4_K_M mixes' second layer has a Q8_0 v beside Q5_0
    q and k: a kernel of those two formats."""
    path = synth(arch, mix)
    default = run_job(path)["jobs"]  # a kernel per format
    for env in ({"ORCD_FUSED_FORMAT": "0"}, {"ORCD_FUSED_STREAM": "0"}):
        assert run_job(path, **env)["jobs"] == default, env


RUN_PROMPTS = """
import json, sys, threading
from orcd.engine.cuda import CudaEngine
from orcd.engine.logprobs import Scoring
from orcd.engine.sampling import SamplingParams
engine = CudaEngine(0)
engine.load(sys.argv[1], 256)
greedy = SamplingParams(temperature=0.0)
penalized = SamplingParams(temperature=0.0, repetition_penalty=1.3)
sampled = SamplingParams(temperature=0.8, top_k=40, seed=7)
ids = [(i * 37) % 50 + 3 for i in range(256)]
out = []

def job(prompt, params, n_cached=0, tokens=12):
    scoring = Scoring(top_n=3)
    got = list(engine.generate(prompt, params, tokens, set(), threading.Event(), n_cached, scoring))
    out.append([got, [[lp.logprob, lp.top] for lp in scoring.generated]])
    return got

# prompt chunks of each kind: 2 rows, inside a bucket, on its edge, past 64, at the context's end
for n, params in ((2, greedy), (5, sampled), (16, penalized), (17, greedy), (33, sampled),
                  (64, greedy), (65, penalized), (200, sampled), (240, greedy)):
    got = job(ids[:n], params)
# a turn that adds to the last job: the cache keeps its first 245 rows, 3 are prefilled at 245,
# where their bucket (16) would pass the context of 256
turn = ids[:240] + got[:5] + ids[:3]
job(turn, greedy, engine.reusable_prefix(turn), tokens=4)
print(json.dumps(out))
"""


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt-oss"])
def test_prefill_graphs_and_decode_ahead_give_the_same_ids_and_logprobs(synth, arch):
    """A prompt chunk of up to 256 rows replayed from its size bucket's graph (ORCD_PREFILL_GRAPH:
    the prompt rounded up to 16 rows with id 0), decode step k + 1 launched before id k is read
    (ORCD_DECODE_AHEAD), and the prefill's kernels each launched to overlap the one before
    (ORCD_OVERLAP), each against kernel-by-kernel launches, the step launched after the read
    and serialized kernels: the same ids and the same logprobs, to the bit, for greedy,
    penalized and sampled jobs of prompts from 2 to 240 rows and a cached turn at the end of
    the context."""
    path = synth(arch)

    def run(**env):
        proc = subprocess.run([sys.executable, "-c", RUN_PROMPTS, str(path)], cwd=ROOT,
                              capture_output=True, text=True, env=os.environ | env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    default = run()
    assert run(ORCD_PREFILL_GRAPH="0", ORCD_DECODE_AHEAD="0") == default
    assert run(ORCD_PREFILL_GRAPH="0") == default
    assert run(ORCD_CUDA_GRAPH="0") == default
    assert run(ORCD_OVERLAP="0") == default  # the prefill's kernels serialized, not overlapping
    assert [len(ids) for ids, _ in default] == [12] * 9 + [4]


@pytest.mark.gpu
def test_the_decode_thread_takes_one_job_at_a_time(synth):
    """A job goes to the engine's own decode thread (orcd_engine_start_job) and start_job returns
    at once; a second job while the first runs is refused, and the first ends as asked."""
    engine = cuda_engine(synth("llama"))
    model = engine._model
    model.start_job([1, 5, 9], GREEDY, 250, set())
    assert model.job_running()
    with pytest.raises(InternalError, match="still running"):
        model.start_job([1, 5, 9], GREEDY, 4, set())
    model.cancel()
    assert isinstance(model.job_error(wait=True), Cancelled)
    assert not model.job_running()
    assert generate(engine, [1, 5, 9], GREEDY, max_tokens=4)  # the thread takes the next job


@pytest.mark.gpu
def test_job_marks_time_the_c_loop_stages_in_order(synth):
    """What `orcd serve --trace` adds between generate_start and first_event: when the C loop
    was entered, had launched the prefill and first sample, and saw the first id."""
    engine = cuda_engine(synth("llama"))
    assert engine.job_marks() == {}
    before = time.perf_counter_ns()
    generate(engine, [1, 5, 9, 13], GREEDY, max_tokens=3)
    after = time.perf_counter_ns()
    marks = engine.job_marks()
    assert list(marks) == ["engine_entered", "engine_prefilled", "engine_first_id"]
    assert before < marks["engine_entered"] <= marks["engine_prefilled"] <= marks["engine_first_id"] < after


@pytest.mark.gpu
@pytest.mark.parametrize("arch, mix", [("llama", "Q8_0"), ("qwen2", "Q8_0"), ("gpt-oss", "Q8_0"),
                                       ("qwen2", "Q4_K_M")])
@pytest.mark.parametrize("fused", ["1", "0"])
def test_joint_projections_give_the_same_ids_from_fewer_allocations(synth, arch, mix, fused):
    """q, k, v (with their biases) and gate, up placed side by side at load, one matmul per
    group (ORCD_JOINT, model.cu's joint_tensors): the ids of a tensor an allocation, in a 4-token
    prefill and its decode steps, fused or step by step. The Q4_K_M mix's second layer has a
    Q8_0 v beside Q5_0 q and k (as 13 layers of the real Qwen2.5 file): q and k join there."""
    path = synth(arch, mix)
    joint = run_job(path, ORCD_FUSED=fused)
    apart = run_job(path, ORCD_FUSED=fused, ORCD_JOINT="0")
    assert joint["jobs"] == apart["jobs"]
    assert joint["allocations"] < apart["allocations"]


@pytest.mark.gpu
def test_oom_during_a_job_frees_its_buffers_and_the_next_job_succeeds(synth):
    path = synth("llama")
    clean = run_job(path, "score")
    # Only a job that scores its prompt allocates: its prompt's logits, then their logprobs'
    # scratch, whose first allocation (the job's second) fails. Allocations are counted from
    # the engine's creation, so the load's count places it.
    faulty = run_job(path, "score", ORCD_FAULT=f"alloc:{clean['allocations'] + 2}")
    assert faulty["jobs"] == ["VRAM_OOM", clean["jobs"][0]]
    assert faulty["vram_after_jobs"] == [faulty["after_load"]] * 2


@pytest.mark.gpu
def test_oom_at_load_is_insufficient_vram_frees_everything_and_a_second_load_succeeds(synth, monkeypatch):
    from orcd.engine.cuda import CudaEngine
    monkeypatch.setenv("ORCD_FAULT", "alloc:5")  # read when the engine is created
    engine = CudaEngine(0)
    with pytest.raises(InsufficientVram, match="ORCD_FAULT"):
        engine.load(synth("llama"), CTX)
    assert engine._model.stats()["vram_bytes_used"] == 0
    engine.load(synth("llama"), CTX)  # the fault fires once
    assert len(generate(engine, [1, 2], GREEDY, 4)) == 4


@pytest.mark.gpu
def test_a_context_too_large_for_the_gpu_is_insufficient_vram(synth):
    from orcd.engine.cuda import CudaEngine
    path = synth("llama")
    with pytest.raises(InsufficientVram, match=r"GPU 0 has \d+ bytes free") as e:
        CudaEngine(0).load(path, ctx=2**30)
    assert str(path) in str(e.value)


@pytest.mark.gpu
def test_vram_accounting_residency_and_progress(synth):
    import orcd.gguf
    from orcd.engine.cuda import CudaEngine
    path = synth("phi3")
    engine = CudaEngine(0)
    assert engine.health()["vram_bytes_used"] == 0
    progress = []
    engine.load(path, CTX, progress.append)
    assert progress == [0, 25, 50, 75, 100]
    loaded = engine.health()["vram_bytes_used"]
    cfg = engine.config
    kv = 2 * cfg.block_count * cfg.k_dim * CTX * 2
    assert loaded >= Path(path).stat().st_size // 2 + kv  # weights (most of the file) + KV
    with orcd.gguf.open(path) as f:
        weights = sum(t.nbytes for t in f.tensors.values())
    assert loaded <= _cuda.vram_required(cfg, CTX, weights)  # load takes no more than it checks
    assert engine.check_residency() and engine.health()["resident"]
    generate(engine, [1, 2, 3], GREEDY, 8)
    assert engine.health()["vram_bytes_used"] == loaded
    engine.close()
    assert engine.health()["vram_bytes_used"] == 0


@pytest.mark.gpu
def test_a_job_allocates_device_memory_only_to_score_its_prompt(synth):
    """Prefill's buffers are allocated at load: a job makes no cudaMalloc, nor the cudaFree that
    would wait for the device, except for a scored prompt's logits (not in the load's budget)."""
    engine = cuda_engine(synth("qwen2"))
    stats = engine._model.stats
    loaded, before = engine.health()["vram_bytes_used"], stats()["allocations_made"]
    prompt = list(np.random.default_rng(5).integers(0, engine.config.vocab_size, 200))
    ids = generate(engine, prompt, GREEDY, 8)
    n = engine.reusable_prefix(prompt + ids)
    assert n > len(prompt)  # the next job prefills its last two rows on the same buffers
    list(engine.generate(prompt + ids, GREEDY, 4, set(), threading.Event(), n))
    assert stats()["allocations_made"] == before
    scoring = Scoring(top_n=1, with_prompt=True)
    list(engine.generate(prompt, GREEDY, 4, set(), threading.Event(), scoring=scoring))
    assert stats()["allocations_made"] > before and len(scoring.prompt) == len(prompt) - 1
    assert engine.health()["vram_bytes_used"] == loaded
    engine.close()


@pytest.mark.gpu
def test_stop_id_and_cancel(synth):
    from orcd.errors import Cancelled
    engine = cuda_engine(synth("qwen2"))
    ids = generate(engine, [4, 5, 6], GREEDY, 16)
    assert generate(engine, [4, 5, 6], GREEDY, 16, {ids[3]})[-1] == ids[3]
    cancel = threading.Event()
    stream = engine.generate([4, 5, 6], GREEDY, 200, set(), cancel)
    next(stream)
    cancel.set()
    with pytest.raises(Cancelled):
        list(stream)
    assert generate(engine, [4, 5, 6], GREEDY, 16) == ids  # the engine still serves


def test_binding_exposes_the_engine():
    assert callable(_cuda.DeviceModel) and callable(_cuda.vram_required) and callable(_cuda.sample_logits)


def test_binding_maps_each_architecture_to_its_own_c_value():
    assert set(_cuda.ARCHS) == set(ARCHITECTURES)
    assert len(set(_cuda.ARCHS.values())) == len(ARCHITECTURES)


def test_vram_estimate_grows_by_the_kv_cache(synth):
    import orcd.gguf
    from orcd.models import describe
    with orcd.gguf.open(synth("qwen2")) as f:
        cfg = describe(f)
    small, large = _cuda.vram_required(cfg, 256, 10**6), _cuda.vram_required(cfg, 512, 10**6)
    assert large - small >= 2 * cfg.block_count * cfg.k_dim * 256 * 2  # FP16 keys and values


@pytest.mark.skipif(_cuda.device_count() > 0, reason="checks the message shown without a GPU")
def test_without_a_gpu_the_engine_names_the_cpu_device():
    from orcd.engine.cuda import CudaEngine
    with pytest.raises(CudaError, match="--device cpu"):
        CudaEngine(0)
    with pytest.raises(CudaError, match="--device cpu"):
        _cuda.DeviceModel(0)


@pytest.mark.gpu
@pytest.mark.parametrize("name, value, names", [
    ("ORCD_FUSED", "2", "ORCD_FUSED=2: use persistent"),
    ("ORCD_PERSISTENT_BLOCKS", "9", "ORCD_PERSISTENT_BLOCKS=9: use 1 to 4"),
    ("ORCD_MATVEC", "int4", "ORCD_MATVEC=int4: use f32"),
    ("ORCD_OVERLAP", "yes", "ORCD_OVERLAP=yes: use 0"),
    ("ORCD_CLUSTERS", "yes", "ORCD_CLUSTERS=yes: use 0"),
    ("ORCD_JOINT", "2", "ORCD_JOINT=2: use 0"),
    ("ORCD_FUSED_WARPS", "16", "ORCD_FUSED_WARPS=16: use 2, 4 or 8"),
    ("ORCD_HIDDEN_Q8", "no", "ORCD_HIDDEN_Q8=no: use 0"),
    ("ORCD_FUSED_STREAM", "2", "ORCD_FUSED_STREAM=2: use 0"),
    ("ORCD_FUSED_FORMAT", "all", "ORCD_FUSED_FORMAT=all: use 0"),
    ("ORCD_SPLIT_STEPS", "on", "ORCD_SPLIT_STEPS=on: use 0"),
    ("ORCD_WIDE_TILES", "2", "ORCD_WIDE_TILES=2: use 0"),
    ("ORCD_DENSE_TILES", "2", "ORCD_DENSE_TILES=2: use 0"),
    ("ORCD_WGMMA", "on", "ORCD_WGMMA=on: use 0"),
    ("ORCD_PREFILL_CHUNK", "100", "ORCD_PREFILL_CHUNK=100: use a multiple of 64"),
])
def test_a_bad_switch_fails_engine_creation_naming_it(monkeypatch, name, value, names):
    from orcd.engine.cuda import CudaEngine
    monkeypatch.setenv(name, value)  # options.cuh: read once, when the engine is created
    with pytest.raises(InternalError, match=names):
        CudaEngine(0)
