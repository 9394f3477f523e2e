#!/usr/bin/env bash
# ncu of a long prompt's prefill kernels on the GPU box, kernel family by family: where a
# prefill's time goes once job_path.py (torch.profiler: each kernel's total) has said which.
# Usage: bench/profile_prefill.sh MODEL.gguf [TOKENS] [OUTDIR]
# TOKENS (default 512): the prompt prefilled (one pass up to ORCD_PREFILL_CHUNK). Writes
#   OUTDIR/prefill_FAMILY.csv  per launch of each family below (two launches each, past the
#                              first prefill's, which warms the code and the scratch): duration,
#                              SM, memory, L1 and L2 throughput, occupancy, issue and stall figures
#   OUTDIR/prefill_summary.txt those figures' main lines, family by family
# Launches run kernel by kernel (ORCD_PREFILL_GRAPH=0; ncu serializes them anyway, so
# ORCD_OVERLAP's overlap is not seen), with caches and clocks as the workload leaves them.
set -euo pipefail
model=$1
tokens=${2:-512}
out=${3:-${OUT:-/tmp/out}}
mkdir -p "$out"
# The families of a llama-family or gpt-oss layer's prefill (a family absent from the model's
# path, e.g. the experts of a dense model, profiles nothing).
families="matmul_wgmma dense_weights dense_tokens expert_wgmma router gather_halves
          group_by_expert combine rope_store attention_prefill rmsnorm swiglu"
run=(python3 -m orcd.cli bench decode --model "$model" --no-llama-cpp --repeats 2
     --prefill-tokens "$tokens" --prompt-tokens 8 --decode-tokens 1)
: > "$out/prefill_summary.txt"
for family in $families; do
    ORCD_PREFILL_GRAPH=0 ncu --cache-control none --clock-control none \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
        --section LaunchStats --section WarpStateStats --section SchedulerStats \
        -k "regex:$family" --launch-skip 8 --launch-count 2 --csv --page details "${run[@]}" \
        > "$out/prefill_$family.csv" 2>> "$out/ncu.err" || true
    {
        echo "== $family"
        grep -E '"(Duration|Grid Size|Block Size|Registers Per Thread|Compute \(SM\) Throughput|Memory Throughput|L1/TEX Cache Throughput|L2 Cache Throughput|DRAM Throughput|Achieved Occupancy|Issued Warp Per Scheduler|Eligible Warps Per Scheduler|Warp Cycles Per Issued Instruction)"' \
            "$out/prefill_$family.csv" | grep -v '^"ID"' |
            awk -F'","' '{print $5 " | " $(NF-2) " " $(NF-1) " " $NF}' |
            tr -d '"' | head -26
    } >> "$out/prefill_summary.txt"
done
cat "$out/prefill_summary.txt"
