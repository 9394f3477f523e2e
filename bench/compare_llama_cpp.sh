#!/usr/bin/env bash
# SPEC §10 side by side on the GPU box: orcd and llama.cpp's llama-bench on the same files in
# the same run. Usage: bench/compare_llama_cpp.sh LLAMA_BUILD_DIR MODEL.gguf [MODEL.gguf ...]
# (build llama.cpp first: cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 ...;
# cmake --build build --target llama-bench). Decode is 128 tokens after a 32-token prompt and
# again at a context depth of DEPTH tokens (default 4096; 0: not); REPEATS runs per figure
# (default 3). Prints orcd's table, then llama-bench's.
set -uo pipefail
build=$1; shift
depth=${DEPTH:-4096}
repeats=${REPEATS:-3}
depths=0
[ "$depth" -gt 0 ] && depths="0,$depth"
for model in "$@"; do
    echo "== $model"
    python3 -m orcd.cli bench decode --model "$model" --no-llama-cpp --depth "$depth" --repeats "$repeats"
    "$build/bin/llama-bench" -m "$model" -ngl 99 -fa 1 -p 32,512 -n 128 -d "$depths" -r "$repeats" 2>/dev/null | grep -E "^\|"
done
