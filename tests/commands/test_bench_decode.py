"""`orcd bench decode` off the GPU: its --prefill-tokens sizes, the prefill FLOP count against a
hand count of the tiny synthetic models, and figures() driven by the real CPU engine (and by
llama-cpp-python where importable). Speeds are never asserted."""
import threading
import time

import pytest

from orcd.bench import decode
from orcd.cli import build_parser
from orcd.engine import create_engine
from orcd.models import describe
import orcd.gguf


def bench_args(*argv):
    return build_parser().parse_args(["bench", "decode", *argv])


@pytest.mark.parametrize("given, sizes", [(None, [32, 512, 4096]), ("32,512,4096", [32, 512, 4096]),
                                          ("32", [32]), ("512,32", [32, 512]), ("8, 8,4", [4, 8])])
def test_prefill_tokens_takes_one_size_or_a_list(given, sizes):
    argv = [] if given is None else ["--prefill-tokens", given]
    assert bench_args(*argv).prefill_tokens == sizes


@pytest.mark.parametrize("given", ["", "abc", "32,x", "0", "32,-1", "32,,512", "1.5"])
def test_prefill_tokens_rejects_what_is_not_a_size(given, capsys):
    with pytest.raises(SystemExit) as e:
        bench_args("--prefill-tokens", given)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--prefill-tokens" in err and "e.g. 32,512,4096" in err and "Traceback" not in err


def test_the_kv_context_holds_the_longest_prefill_and_its_sampled_id():
    assert decode.context_for(bench_args("--ctx", "2048")) == 4097
    assert decode.context_for(bench_args("--ctx", "2048", "--prefill-tokens", "32,512")) == 2048
    assert decode.context_for(bench_args("--ctx", "64", "--prefill-tokens", "100", "--depth", "200",
                                         "--decode-tokens", "8")) == 209


def test_causal_pairs_counts_the_keys_each_query_sees():
    for n in range(1, 20):
        for window in (0, 1, 3, 8, 25):
            seen = sum(min(q + 1, window) if window else q + 1 for q in range(n))
            assert decode.causal_pairs(n, window) == seen


def vocab_size(path):
    with orcd.gguf.open(path) as f:
        return describe(f).vocab_size


def test_prefill_flops_of_a_dense_model_by_hand(tiny_model):
    path = tiny_model("llama")  # 2 layers, d 64, ffn 128, 4 q / 2 kv heads of 16
    d, ffn, q, kv, n = 64, 128, 4 * 16, 2 * 16, 8
    per_token = 2 * 2 * (d * q + 2 * d * kv + q * d + 3 * d * ffn)  # 2 layers
    attention = 2 * 2 * 2 * 4 * 16 * n * (n + 1) // 2  # QK^T and PV, 2 layers, 4 heads of 16
    logits = 2 * d * vocab_size(path)
    assert decode.prefill_flops(path, n) == n * per_token + logits + attention


def test_prefill_flops_of_a_mixture_of_experts_by_hand(tiny_model):
    path = tiny_model("gpt-oss")  # 2 layers, d 64, 8 q / 2 kv heads of 16, 2 of 4 experts of 64
    d, q, kv, experts, used, ffn = 64, 8 * 16, 2 * 16, 4, 2, 64
    per_token = 2 * 2 * (d * q + 2 * d * kv + q * d + d * experts + 3 * d * ffn * used)  # 2 layers
    logits = 2 * d * vocab_size(path)
    per_pair = 2 * 8 * (16 + 16)
    n = 8  # within the window of 8: every layer sees every earlier key
    assert decode.prefill_flops(path, n) == n * per_token + logits + per_pair * 2 * n * (n + 1) // 2
    n = 16  # layer 0 slides: its queries 9..16 see 8 keys each
    pairs = (8 * 9 // 2 + 8 * 8) + n * (n + 1) // 2
    assert decode.prefill_flops(path, n) == n * per_token + logits + per_pair * pairs


def check_prefill(out, sizes, flops):
    assert [p["tokens"] for p in out["prefill"]] == sizes
    for p in out["prefill"]:
        seconds = p["ttft_ms"] / 1e3
        assert p["ttft_ms"] > 0 and p["tokens_per_s"] > 0 and p["tflops"] > 0
        assert p["tokens_per_s"] == pytest.approx(p["tokens"] / seconds, rel=1e-12)  # the same float division
        assert p["tflops"] == pytest.approx(flops(p["tokens"]) / seconds / 1e12, rel=1e-12)
    assert out["prefill_tokens_per_s"] == out["prefill"][-1]["tokens_per_s"]  # the largest size <= 512


@pytest.fixture(scope="module")
def cpu_figures(tiny_model):
    path = tiny_model("llama")
    args = bench_args("--model", str(path), "--prefill-tokens", "4,8", "--prompt-tokens", "4",
                      "--decode-tokens", "4", "--depth", "6", "--repeats", "2")
    start = time.perf_counter()
    engine = create_engine("cpu")
    engine.load(path, decode.context_for(args))
    load_s = time.perf_counter() - start

    def run(ids, n):
        return engine.generate(ids, decode.GREEDY, n, set(), threading.Event())

    def flops(n):
        return decode.prefill_flops(path, n)
    try:
        return args, flops, decode.figures(load_s, run, args, engine.config.vocab_size, flops)
    finally:
        engine.close()


def test_figures_on_the_cpu_engine_give_each_prefill_size(cpu_figures):
    args, flops, out = cpu_figures
    check_prefill(out, [4, 8], flops)
    assert out["decode_tokens_per_s"] > 0 and out["decode_at_depth_tokens_per_s"] > 0 and out["load_s"] > 0


def test_the_headline_prefill_is_512_tokens_else_the_largest_below_else_the_smallest():
    figures = [{"tokens": n} for n in (32, 512, 4096)]
    assert decode.headline(figures)["tokens"] == 512
    assert decode.headline(figures[:1] + figures[2:])["tokens"] == 32
    assert decode.headline(figures[2:])["tokens"] == 4096


def test_table_shows_a_line_per_prefill_size_and_the_ratios(cpu_figures):
    args, _, out = cpu_figures
    report = {"model": "tiny.gguf", "depth": args.depth,
              "bandwidth": {"decode_tokens_per_s_limit": 1e4, "weight_bytes_per_token": 2**20,
                            "copy_bandwidth": 4e12},
              "orcd": out | {"decode_fraction_of_limit": 0.5, "decode_us_per_layer": 10.0},
              "llama_cpp": out, "llama_cpp_skipped": None, "ratios": decode.ratios(out, out)}
    lines = decode.table(report).splitlines()
    prefill = [line for line in lines if "prefill" in line]
    assert len(prefill) == 3 * 2  # orcd, llama_cpp and their ratios, at 4 and 8 tokens
    assert all("ttft" in line and "TFLOP/s" in line for line in prefill[:4])
    assert prefill[-1].split()[-1] == "1.00x"


def test_llama_cpp_reports_the_same_prefill_sizes(tiny_model):
    pytest.importorskip("llama_cpp")
    path = tiny_model("llama")
    args = bench_args("--model", str(path), "--prefill-tokens", "4,8", "--prompt-tokens", "4",
                      "--decode-tokens", "4", "--repeats", "1")
    check_prefill(decode.measure_llama_cpp(path, args), [4, 8], lambda n: decode.prefill_flops(path, n))
