#!/usr/bin/env bash
# ncu of one decode step's kernels on the GPU box: where each fused decode kernel's time goes.
# Usage: bench/profile_decode.sh MODEL.gguf [DEPTH] [OUTDIR]
# DEPTH (default 0): prompt tokens before the profiled step (attention grows with it). Writes
#   OUTDIR/summary.csv  per kernel launch: duration, SM and memory throughput, warps per SM,
#                       cycles per issued instruction and the warp stall reasons (WarpStateStats)
#   OUTDIR/sass.csv     the first fused matvec's SASS with its stall samples (where the chain is)
# The step runs kernel by kernel (ORCD_CUDA_GRAPH=0; ncu serializes launches anyway, so
# ORCD_OVERLAP's overlap is not seen) with caches and clocks as the workload leaves them.
# Seen on 2026-12-02 (Qwen2.5-0.5B shape, depth 0, weights warm in L2): fused matvecs 8-25 us
# at 1-11 % of memory throughput, 6-13 cycles per issued instruction, 3-4 warps per SM.
set -euo pipefail
model=$1
depth=${2:-0}
out=${3:-${OUT:-/tmp/out}}
mkdir -p "$out"
# Past three tokens of kernels: six consecutive kernels of a decode step (each kind at least once).
kernels='regex:fused_matvec|attention_decode'
layers=$(python3 -c "
import sys, orcd.gguf
with orcd.gguf.open(sys.argv[1]) as f:
    print(next(v for k, v in f.metadata.items() if k.endswith('.block_count')))" "$model")
skip=$(( (4 * layers + 1 + layers) * 3 ))  # per token: 4 matvecs and 1 attention a layer, logits
run=(python3 -m orcd.cli bench decode --model "$model" --no-llama-cpp --repeats 1
     --prompt-tokens $((depth + 8)) --decode-tokens 8)
ORCD_CUDA_GRAPH=0 ncu --cache-control none --clock-control none \
    --section SpeedOfLight --section WarpStateStats --section LaunchStats --section Occupancy \
    -k "$kernels" --launch-skip "$skip" --launch-count 6 --csv --page details "${run[@]}" \
    > "$out/summary.csv" 2> "$out/ncu.err"
ORCD_CUDA_GRAPH=0 ncu --cache-control none --clock-control none --set full --import-source yes \
    -k regex:fused_matvec --launch-skip "$skip" --launch-count 1 -o "$out/first" "${run[@]}" \
    > /dev/null 2>> "$out/ncu.err"
ncu -i "$out/first.ncu-rep" --page source --print-source sass --csv > "$out/sass.csv" 2>> "$out/ncu.err"
rm -f "$out/first.ncu-rep"
wc -l "$out"/summary.csv "$out"/sass.csv
