#!/usr/bin/env bash
# SPEC §10 side by side on the GPU box: orcd and llama.cpp's llama-bench on the same files in
# the same run. Usage: bench/compare_llama_cpp.sh LLAMA_BUILD_DIR MODEL.gguf [MODEL.gguf ...]
# (build llama.cpp first: cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 ...;
# cmake --build build --target llama-bench; llama-server for `orcd bench server --peer` needs
# -DLLAMA_USE_PREBUILT_UI=OFF there without network, and scripts/ in the source). Decode is
# 128 tokens after a 32-token prompt and again at a context depth of DEPTH tokens (default
# 4096; 0: not); prefill is timed at each
# prompt size of PREFILL (default 32,512,4096: llama-bench -p, orcd's --prefill-tokens, with
# orcd's time to first token and TFLOP/s); REPEATS runs per figure (default 3). Prints orcd's
# table, then llama-bench's, per file, then all of it as one table with ratios
# (bench/compare_table.py).
set -uo pipefail
build=$1; shift
depth=${DEPTH:-4096}
repeats=${REPEATS:-3}
prefill=${PREFILL:-32,512,4096}
depths=0
[ "$depth" -gt 0 ] && depths="0,$depth"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for model in "$@"; do
    echo "== $model"
    python3 -m orcd.cli bench decode --model "$model" --no-llama-cpp --depth "$depth" --repeats "$repeats" \
        --prefill-tokens "$prefill"
    "$build/bin/llama-bench" -m "$model" -ngl 99 -fa 1 -p "$prefill" -n 128 -d "$depths" -r "$repeats" 2>/dev/null | grep -E "^\|"
done | tee "$out"
echo
python3 "$(dirname "$0")/compare_table.py" "$out"
