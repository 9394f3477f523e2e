"""`orcd bench kernels`: the quantized-weight kernels on the target models' real shapes.

matvec (decode) is memory-bound: its figure is the effective bandwidth, weight bytes / time.
matmul (prefill) reports TFLOP/s (2 * n * rows * cols / time) and the same weight bandwidth.
Both are given as a fraction of the device copy bandwidth measured in the same run
(2 * bytes / time of a device-to-device cudaMemcpy: it reads and writes each byte).
Times are CUDA-event means over many calls with W cycling through >= 256 MiB of copies, so the
weights come from device memory, not from L2.
moe (gpt-oss's mixture of experts, one layer) reports the bytes a call must read (the chosen
experts' gate, up and down once each, their biases, the router) per second, and TFLOP/s of the
experts' products; successive calls take other tokens, so other experts (about one expert in
eight of a decode call was also chosen by the previous call, and may come from L2).
attention (prefill over the FP16 KV cache, one layer) reports the cache bytes a call reads once
(its keys and values) per second, and TFLOP/s of q·k and p·v over the causal pairs.
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np

from orcd import quant
from orcd.commands import env_default, flag

HELP = "matvec bandwidth and matmul TFLOP/s per weight format on the real shapes"

# (model, tensor, rows, cols) with rows x cols = GGUF ne1 x ne0 (SPEC §6).
SHAPES = [
    ("qwen2.5-0.5b", "attn_q", 896, 896),
    ("qwen2.5-0.5b", "ffn_up", 4864, 896),
    ("qwen2.5-0.5b", "ffn_down", 896, 4864),
    ("qwen2.5-0.5b", "output", 151936, 896),
    ("phi3-mini", "attn_qkv", 9216, 3072),
    ("phi3-mini", "ffn_up", 16384, 3072),
    ("phi3-mini", "ffn_down", 3072, 8192),
    ("gpt-oss-20b", "ffn_gate_up_exps (one expert)", 5760, 2880),
    ("gpt-oss-20b", "output", 201088, 2880),
]
FORMATS = [t.name for t in quant.BLOCKS]
MATMUL_N = [16, 128, 512]
MATMUL_SHAPES = {("qwen2.5-0.5b", "ffn_up"), ("phi3-mini", "attn_qkv"),
                 ("gpt-oss-20b", "ffn_gate_up_exps (one expert)")}
# gpt-oss-20b's experts: d = ff = 2880, 32 experts, 4 chosen per token.
MOE = ("gpt-oss-20b", "ffn_{gate,up,down}_exps (4 of 32)", 2880, 2880)
MOE_EXPERTS, MOE_USED = 32, 4
MOE_N = [1, 512, 2048]  # decode, a short prompt, a prefill pass of ORCD_PREFILL_CHUNK's default
MOE_BATCHES = 64  # token batches the calls cycle through (decode: 64 different expert sets)
MOE_ROWS = 32768  # ... at most this many tokens in all (xn: 377 MB of F32)
# (model, tensor: what the call is, heads, kv_heads, head_dim, n, pos0): a 512-token prompt
# from 0, and a chat turn's 31 new tokens after ~2500 cached ones.
ATTENTION = [("qwen2.5-0.5b", "prefill of 512 at 0", 14, 2, 64, 512, 0),
             ("qwen2.5-0.5b", "cached turn of 31 at 2500", 14, 2, 64, 31, 2500),
             ("phi3-mini", "prefill of 512 at 0", 32, 32, 96, 512, 0)]
FLOATS = {"F32", "F16", "BF16"}
MAX_FLOAT_VALUES = 1 << 28  # bigger float matrices would take GBs of host memory


@dataclass
class Row:
    op: str
    format: str
    model: str
    tensor: str
    rows: int
    cols: int
    n: int
    weight_bytes: int
    seconds: float
    bandwidth: float       # weight bytes / s
    copy_fraction: float   # bandwidth / device copy bandwidth
    tflops: float


def add_arguments(parser) -> None:
    parser.add_argument("--formats", default=env_default("--formats", ",".join(FORMATS)),
                        help="comma-separated ggml types (default: all served)")
    parser.add_argument("--ops", default=env_default("--ops", "matvec,matmul,moe,attention"),
                        help="comma-separated: matvec, matmul, moe, attention")
    parser.add_argument("--iters", type=int, default=env_default("--iters", 200, int),
                        help="timed calls per figure (matmul uses a quarter)")
    parser.add_argument("--json", action="store_true", default=env_default("--json", False, flag),
                        help="print one JSON object instead of a table")


def cases(formats, ops):
    """(op, format, model, tensor, rows, cols, n) of every figure the options ask for."""
    for name in formats:
        block = quant.BLOCKS[quant.format_of(name).ggml_type][0]
        for model, tensor, rows, cols in SHAPES:
            if cols % block or (name in FLOATS and rows * cols > MAX_FLOAT_VALUES):
                continue
            if "matvec" in ops:
                yield "matvec", name, model, tensor, rows, cols, 0
            if "matmul" in ops and (model, tensor) in MATMUL_SHAPES:
                for n in MATMUL_N:
                    yield "matmul", name, model, tensor, rows, cols, n
        model, tensor, d, ff = MOE
        if "moe" in ops and d % block == 0 and ff % block == 0 and name not in FLOATS:
            for n in MOE_N:
                yield "moe", name, model, tensor, d, ff, n
    if "attention" in ops:
        for model, tensor, heads, _, head_dim, n, _ in ATTENTION:
            yield "attention", "F16", model, tensor, heads, head_dim, n


@functools.lru_cache(maxsize=1)  # cases() yields every figure of one matrix in a row
def random_weights(name: str, rows: int, cols: int) -> np.ndarray:
    return quant.random_blocks(name, (rows, cols), np.random.default_rng(rows * cols))


def moe_bytes(name: str, d: int, ff: int, n: int) -> int:
    """Bytes one moe call must read: each expert its tokens choose (at most all of them) once,
    gate and up (ff rows of d) and down (d rows of ff) with their F32 biases, and the router."""
    experts = min(MOE_EXPERTS, n * MOE_USED)
    expert = 2 * ff * quant.row_bytes(name, d) + d * quant.row_bytes(name, ff) + 4 * (2 * ff + d)
    return experts * expert + 4 * MOE_EXPERTS * (d + 1)


@functools.lru_cache(maxsize=1)  # the moe figures of a format come in a row
def moe_layer(name: str, d: int, ff: int):
    from orcd import _cuda
    rng = np.random.default_rng(d * ff)
    gate_up, down = (MOE_EXPERTS, ff, d), (MOE_EXPERTS, d, ff)
    raw = [quant.random_blocks(name, shape, rng) for shape in (gate_up, gate_up, down)]
    bias = [rng.standard_normal(shape[:2]).astype(np.float32) for shape in (gate_up, gate_up, down)]
    router_w = (rng.standard_normal((MOE_EXPERTS, d)) / np.sqrt(d)).astype(np.float32)
    router_b = rng.standard_normal(MOE_EXPERTS).astype(np.float32)
    ggml = int(quant.format_of(name).ggml_type)
    return _cuda.MoeLayer(router_w, router_b, ggml, raw[0], raw[1], bias[0], bias[1], ggml,
                          raw[2], bias[2], MOE_USED)


def measure_moe(name, model, tensor, d, ff, n, copy_bw, iters) -> Row:
    batches = max(1, min(MOE_BATCHES, MOE_ROWS // n))
    xn = np.random.default_rng(n).standard_normal((batches * n, d)).astype(np.float32)
    calls = iters if n == 1 else max(1, iters // 4)
    seconds = moe_layer(name, d, ff).bench(xn, n, calls)
    nbytes = moe_bytes(name, d, ff, n)
    bandwidth = nbytes / seconds
    return Row("moe", name, model, tensor, d, ff, n, nbytes, seconds, bandwidth,
               bandwidth / copy_bw, 2.0 * n * MOE_USED * 3 * d * ff / seconds / 1e12)


def measure_attention(model, tensor, copy_bw, iters) -> Row:
    from orcd import _cuda
    _, _, heads, kv_heads, head_dim, n, pos0 = next(
        a for a in ATTENTION if a[0] == model and a[1] == tensor)
    seconds = _cuda.bench_attention(heads, kv_heads, head_dim, n, pos0, iters)
    nbytes = 2 * 2 * (pos0 + n) * kv_heads * head_dim  # K and V in FP16
    pairs = n * pos0 + n * (n + 1) // 2  # (query, key) pairs a causal call scores
    bandwidth = nbytes / seconds
    return Row("attention", "F16", model, tensor, heads, head_dim, n, nbytes, seconds, bandwidth,
               bandwidth / copy_bw, 4.0 * heads * head_dim * pairs / seconds / 1e12)


def measure(op, name, model, tensor, rows, cols, n, copy_bw, iters) -> Row:
    from orcd import _cuda
    if op == "moe":
        return measure_moe(name, model, tensor, rows, cols, n, copy_bw, iters)
    if op == "attention":
        return measure_attention(model, tensor, copy_bw, iters)
    raw = random_weights(name, rows, cols)
    calls = iters if op == "matvec" else max(1, iters // 4)
    seconds = _cuda.bench_weights(int(quant.format_of(name).ggml_type), raw, rows, cols, n, calls)
    bandwidth = raw.nbytes / seconds
    return Row(op, name, model, tensor, rows, cols, n, raw.nbytes, seconds, bandwidth,
               bandwidth / copy_bw, 2.0 * n * rows * cols / seconds / 1e12)


def table(rows: list[Row], copy_bw: float, device: str) -> str:
    lines = [f"device: {device}; copy bandwidth {copy_bw / 1e12:.2f} TB/s (2 x bytes / time, D2D)",
             f"{'op':6} {'format':6} {'shape':>13} {'n':>4} {'MiB':>8} {'us':>9} "
             f"{'GB/s':>7} {'% copy':>6} {'TFLOP/s':>7}  tensor"]
    for r in rows:
        lines.append(f"{r.op:6} {r.format:6} {f'{r.rows}x{r.cols}':>13} {r.n:>4} "
                     f"{r.weight_bytes / 2**20:8.1f} {r.seconds * 1e6:9.1f} "
                     f"{r.bandwidth / 1e9:7.0f} "
                     f"{100 * r.copy_fraction:6.1f} {r.tflops:7.2f}  {r.model} {r.tensor}")
    return "\n".join(lines)


def run(args) -> int:
    from orcd import _cuda
    formats = [quant.format_of(f.strip()).ggml_type.name for f in args.formats.split(",")]
    ops = {o.strip() for o in args.ops.split(",")}
    device = _cuda.device_info(0)["name"]
    copy_bw = _cuda.copy_bandwidth()
    rows = [measure(*case, copy_bw, args.iters) for case in cases(formats, ops)]
    if args.json:
        print(json.dumps({"device": device, "copy_bandwidth": copy_bw,
                          "figures": [asdict(r) for r in rows]}, indent=1))
    else:
        print(table(rows, copy_bw, device))
    return 0
