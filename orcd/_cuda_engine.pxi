# The engine's binding, included by _cuda.pyx: DeviceModel owns an orcd_engine handle; loading
# reports progress through a C callback into Python, and the decode loop runs in C without
# the GIL while Python drains the token ring.
import numpy as np
from orcd.models.rope import rope_scaling
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from orcd.engine.logprobs import TokenLogprob

cdef extern from "orcd_cuda.h":
    ctypedef struct orcd_engine:
        pass
    int ORCD_ARCH_LLAMA
    int ORCD_ARCH_QWEN2
    int ORCD_ARCH_PHI3
    int ORCD_ARCH_GPT_OSS
    enum: ORCD_PREFILL_CHUNK
    ctypedef struct orcd_model_config:
        int arch
        int block_count
        int embedding_length
        int feed_forward_length
        int head_count
        int head_count_kv
        int head_dim
        int vocab_size
        int ctx
        int rope_dimension_count
        int rope_neox
        float rms_eps
        float rope_freq_base
        const double *rope_factors
        float rope_scale
        int expert_count
        int expert_used_count
        int expert_feed_forward_length
        int sliding_window
    ctypedef struct orcd_tensor:
        const char *name
        int ggml_type
        const void *host
        size_t nbytes
        int64_t ne0
        int64_t ne1
        int64_t ne2
    ctypedef struct orcd_sampling:
        float temperature
        float top_p
        float min_p
        float repetition_penalty
        int top_k
        uint64_t seed
        int top_logprobs
        int prompt_logprobs
        int constrained
    int ORCD_MAX_TOP_LOGPROBS
    ctypedef struct orcd_logprob:
        int32_t token
        float logprob
        int32_t top_ids[20]
        float top_logprobs[20]
    ctypedef void (*orcd_progress_fn)(int percent, void *user) noexcept
    ctypedef struct orcd_engine_stats:
        size_t vram_bytes_used
        long allocations_made
        int loaded

    orcd_status orcd_engine_create(int device, orcd_engine **out) nogil
    void orcd_engine_destroy(orcd_engine *engine) nogil
    size_t orcd_engine_vram_required(const orcd_model_config *cfg, size_t weight_bytes) nogil
    orcd_status orcd_engine_load(orcd_engine *engine, const orcd_model_config *cfg,
                                 const orcd_tensor *tensors, int n_tensors, size_t chunk_bytes,
                                 orcd_progress_fn progress, void *user) nogil
    void orcd_engine_stats_get(const orcd_engine *engine, orcd_engine_stats *out) nogil
    orcd_status orcd_engine_check_residency(orcd_engine *engine, int *resident) nogil
    int orcd_engine_resident(const orcd_engine *engine) nogil
    orcd_status orcd_engine_forward_logits(orcd_engine *engine, const int32_t *ids, int n,
                                           float *logits) nogil
    orcd_status orcd_engine_start_job(orcd_engine *engine, const int32_t *prompt, int n_prompt,
                                      int n_cached, const orcd_sampling *params, int max_tokens,
                                      const int32_t *stop_ids, int n_stop) nogil
    orcd_status orcd_engine_job_status(orcd_engine *engine, int wait, int *running) nogil
    orcd_status orcd_engine_read_tokens(orcd_engine *engine, int start, int32_t *out, int cap,
                                        int timeout_ms, int *n_out, int *finished,
                                        orcd_logprob *logprobs) nogil
    void orcd_engine_cancel(orcd_engine *engine) nogil
    orcd_status orcd_engine_prompt_logprobs(orcd_engine *engine, orcd_logprob *out, int n) nogil
    orcd_status orcd_engine_put_mask(orcd_engine *engine, int step, const uint32_t *mask,
                                     int n_words) nogil
    orcd_status orcd_test_logprobs(int device, const float *logits, int rows, int vocab,
                                   const int32_t *ids, int top_n, orcd_logprob *out) nogil
    ctypedef struct orcd_job_times:
        int64_t entered
        int64_t prefilled
        int64_t first_id
    void orcd_engine_job_times(const orcd_engine *engine, orcd_job_times *out) nogil
    orcd_status orcd_sample_host_logits(int device, const float *logits, int vocab,
                                        const orcd_sampling *params, uint64_t step,
                                        const int32_t *history, int n_history,
                                        const uint32_t *mask, int32_t *out) nogil

MAX_TOP_LOGPROBS = ORCD_MAX_TOP_LOGPROBS  # orcd.engine.logprobs.MAX_TOP_LOGPROBS (a test checks)
# orcd.models.ARCHITECTURES by their C enum values (tests/cuda/test_binding.py holds the two
# lists equal).
ARCHS = {"llama": ORCD_ARCH_LLAMA, "qwen2": ORCD_ARCH_QWEN2, "phi3": ORCD_ARCH_PHI3,
         "gpt-oss": ORCD_ARCH_GPT_OSS}
PREFILL_CHUNK = ORCD_PREFILL_CHUNK

cdef enum:
    READ_BATCH = 256  # ids taken from the ring per read


cdef orcd_model_config model_config(cfg, int ctx) except *:
    """The C config of an orcd.models.ModelConfig with a KV cache of ctx positions, for
    DeviceModel.load and vram_required alike."""
    if cfg.arch not in ARCHS:
        raise InternalError(f"the CUDA engine runs {', '.join(ARCHS)}, not {cfg.arch!r}")
    cdef orcd_model_config c
    c.arch = ARCHS[cfg.arch]
    c.block_count = cfg.block_count
    c.embedding_length = cfg.embedding_length
    c.feed_forward_length = cfg.feed_forward_length
    c.head_count = cfg.head_count
    c.head_count_kv = cfg.head_count_kv
    c.head_dim = cfg.key_length
    c.vocab_size = cfg.vocab_size
    c.ctx = ctx
    c.rope_dimension_count = cfg.rope_dimension_count
    c.rope_neox = cfg.rope_neox
    c.rms_eps = cfg.rms_eps
    c.rope_freq_base = cfg.rope_freq_base
    c.rope_factors = NULL  # load() sets the scaling of the file
    c.rope_scale = 1.0
    c.expert_count = cfg.expert_count
    c.expert_used_count = cfg.expert_used_count
    c.expert_feed_forward_length = cfg.expert_feed_forward_length
    c.sliding_window = cfg.sliding_window
    return c


def float_tensor(tensors, name):
    """The values of F32 tensor `name` among orcd.gguf TensorInfos, or None."""
    for t in tensors:
        if t.name == name and int(t.ggml_type) == 0:
            return t.data.reshape(-1).view(np.float32)
    return None


cdef orcd_sampling sampling(params) except *:
    cdef orcd_sampling s
    s.temperature = params.temperature
    s.top_p = params.top_p
    s.min_p = params.min_p
    s.repetition_penalty = params.repetition_penalty
    s.top_k = params.top_k
    s.seed = params.seed
    s.top_logprobs = -1
    s.prompt_logprobs = 0
    s.constrained = 0
    return s


cdef record(const orcd_logprob *r, int top_n):
    return TokenLogprob(r.token, r.logprob, tuple((r.top_ids[k], r.top_logprobs[k]) for k in range(top_n)))


def vram_required(cfg, int ctx, size_t weight_bytes) -> int:
    """Device bytes the engine will hold for this model, context and weights."""
    cdef orcd_model_config c = model_config(cfg, ctx)
    return orcd_engine_vram_required(&c, weight_bytes)


cdef void report_progress(int percent, void *user) noexcept with gil:
    state = <list>user  # [callback, first exception or None]
    if state[1] is not None:
        return
    try:
        state[0](percent)
    except BaseException as e:
        state[1] = e


def sample_logits(logits, params, int step, history, mask=None, int device=0) -> int:
    """The GPU sampler's id for host logits (tests: parity with orcd.engine.sampling.sample);
    mask: None or the uint32 bitmask of the allowed ids (orcd.engine.constraint)."""
    cdef float[::1] l = np.ascontiguousarray(logits, dtype=np.float32)
    cdef int32_t[::1] h = np.ascontiguousarray(np.asarray(history, dtype=np.int32).reshape(-1))
    cdef const uint32_t[::1] m
    cdef const uint32_t *mp = NULL
    if mask is not None:
        m = np.ascontiguousarray(mask, dtype=np.uint32)
        if m.shape[0] != (l.shape[0] + 31) // 32:
            raise ValueError(f"a mask of {m.shape[0]} words for {l.shape[0]} logits")
        mp = &m[0]
    cdef orcd_sampling s = sampling(params)
    cdef int32_t out = -1
    cdef const int32_t *hp = &h[0] if h.shape[0] else NULL
    cdef orcd_status st
    with nogil:
        st = orcd_sample_host_logits(device, &l[0], <int>l.shape[0], &s, step, hp,
                                     <int>h.shape[0], mp, &out)
    check(st)
    return out


def token_logprobs(logits, ids, int top_n, int device=0) -> list:
    """The GPU logprob kernels on host logits [rows, vocab] at ids[rows] (tests)."""
    cdef float[:, ::1] l = np.ascontiguousarray(logits, dtype=np.float32)
    cdef int32_t[::1] i = np.ascontiguousarray(ids, dtype=np.int32)
    if i.shape[0] != l.shape[0]:
        raise ValueError(f"{i.shape[0]} ids for {l.shape[0]} rows")
    cdef int rows = l.shape[0], vocab = l.shape[1]
    cdef orcd_logprob *out = <orcd_logprob *>PyMem_Malloc(max(rows, 1) * sizeof(orcd_logprob))
    if out == NULL:
        raise MemoryError()
    cdef orcd_status st
    try:
        with nogil:
            st = orcd_test_logprobs(device, &l[0, 0], rows, vocab, &i[0], top_n, out)
        check(st)
        return [record(&out[r], top_n) for r in range(rows)]
    finally:
        PyMem_Free(out)


cdef class DeviceModel:
    """One model on one GPU (orcd.engine.cuda.CudaEngine drives it). Create, load, then
    generate; close (or drop) to free the VRAM."""
    cdef orcd_engine *handle
    cdef int vocab

    def __cinit__(self, int device=0):
        cdef orcd_status st
        with nogil:
            st = orcd_engine_create(device, &self.handle)
        check(st)

    def __dealloc__(self):
        if self.handle != NULL:
            orcd_engine_destroy(self.handle)

    def close(self):
        if self.handle != NULL:
            with nogil:
                orcd_engine_destroy(self.handle)
            self.handle = NULL

    cdef orcd_engine *live(self) except NULL:
        if self.handle == NULL:
            raise InternalError("the CUDA engine is closed")
        return self.handle

    def load(self, cfg, int ctx, tensors, size_t chunk_bytes=1 << 20, progress_cb=None):
        """Copy `tensors` (orcd.gguf TensorInfo, their .data mapped) to VRAM and allocate the
        KV cache for ctx positions and the decode state."""
        cdef orcd_engine *e = self.live()
        cdef orcd_model_config c = model_config(cfg, ctx)
        factors, scale = rope_scaling(cfg, ctx, lambda name: float_tensor(tensors, name))
        cdef const double[::1] rope_factors  # kept alive for the call
        if factors is not None:
            rope_factors = np.ascontiguousarray(factors, dtype=np.float64)
            c.rope_factors = &rope_factors[0]
        c.rope_scale = scale
        cdef int n = len(tensors)
        cdef orcd_tensor *table = <orcd_tensor *>PyMem_Malloc(max(n, 1) * sizeof(orcd_tensor))
        if table == NULL:
            raise MemoryError()
        names = [t.name.encode() for t in tensors]  # kept alive for the call
        state = [progress_cb, None]
        cdef orcd_progress_fn report = NULL
        if progress_cb is not None:
            report = report_progress
        cdef const unsigned char[::1] data
        cdef orcd_status st
        try:
            for i, t in enumerate(tensors):
                data = t.data.reshape(-1)
                table[i].name = names[i]
                table[i].ggml_type = int(t.ggml_type)
                table[i].host = &data[0] if t.nbytes else NULL
                table[i].nbytes = t.nbytes
                table[i].ne0 = t.shape[0]
                table[i].ne1 = t.shape[1] if len(t.shape) > 1 else 1
                table[i].ne2 = t.shape[2] if len(t.shape) > 2 else 1
            with nogil:
                st = orcd_engine_load(e, &c, table, n, chunk_bytes, report, <void *>state)
        finally:
            PyMem_Free(table)
        check(st)
        self.vocab = c.vocab_size
        if state[1] is not None:
            raise state[1]

    def stats(self) -> dict:
        cdef orcd_engine_stats s
        orcd_engine_stats_get(self.live(), &s)
        return {"vram_bytes_used": s.vram_bytes_used, "allocations_made": s.allocations_made,
                "loaded": bool(s.loaded)}

    def check_residency(self) -> bool:
        """Every device allocation is device memory without a host mapping."""
        cdef int resident = 0
        cdef orcd_engine *e = self.live()
        cdef orcd_status st
        with nogil:
            st = orcd_engine_check_residency(e, &resident)
        check(st)
        return bool(resident)

    def resident(self) -> bool:
        """The last residency check's answer: check_residency's, or the last job's (a job checks
        every allocation while the GPU runs its prefill and fails before its first id)."""
        return bool(orcd_engine_resident(self.live()))

    def forward_logits(self, ids):
        """Logits (len(ids), vocab) of ids at positions 0.. (teacher forcing, tests)."""
        cdef orcd_engine *e = self.live()
        cdef int32_t[::1] x = np.ascontiguousarray(ids, dtype=np.int32)
        out = np.empty((x.shape[0], self.vocab), dtype=np.float32)
        cdef float[:, ::1] o = out
        cdef orcd_status st
        with nogil:
            st = orcd_engine_forward_logits(e, &x[0], <int>x.shape[0], &o[0, 0])
        check(st)
        return out

    def job_times(self) -> dict:
        """perf_counter_ns of the running (or last) job's C stages that it has reached: entered,
        prefilled (the prompt's prefill and first sample launched), first_id (seen on the host)."""
        cdef orcd_job_times t
        orcd_engine_job_times(self.live(), &t)
        return {name: ns for name, ns in (("entered", t.entered), ("prefilled", t.prefilled),
                                          ("first_id", t.first_id)) if ns}

    def start_job(self, prompt_ids, params, int max_tokens, stop_ids, int n_cached=0,
                  int top_logprobs=-1, bint prompt_logprobs=False, bint constrained=False):
        """Hand one job to the engine's decode thread and return at once: the ring is emptied,
        then ids appear in it as they are produced; job_running() and job_error() tell its end.
        n_cached: leading prompt tokens whose KV rows the previous job left (not prefilled).
        top_logprobs >= 0: each id comes with its logprob record (read_tokens); prompt_logprobs:
        the prompt is scored too (prompt_logprobs()); constrained: token k waits for put_mask(k)."""
        cdef orcd_engine *e = self.live()
        cdef int32_t[::1] p = np.ascontiguousarray(prompt_ids, dtype=np.int32)
        cdef int32_t[::1] s = np.ascontiguousarray(sorted(stop_ids) or [-1], dtype=np.int32)
        cdef orcd_sampling sp = sampling(params)
        sp.top_logprobs = top_logprobs
        sp.prompt_logprobs = prompt_logprobs
        sp.constrained = constrained
        cdef int n_stop = len(stop_ids)
        cdef orcd_status st
        with nogil:
            st = orcd_engine_start_job(e, &p[0], <int>p.shape[0], n_cached, &sp, max_tokens,
                                       &s[0], n_stop)
        check(st)

    def job_running(self) -> bool:
        cdef int running = 0
        orcd_engine_job_status(self.live(), 0, &running)
        return bool(running)

    def job_error(self, bint wait=False):
        """The last job's error (Cancelled after cancel()) once it has ended, else None; with
        wait, after waiting for its end (the GIL released)."""
        cdef orcd_engine *e = self.live()
        cdef int running = 0
        cdef orcd_status st
        with nogil:
            st = orcd_engine_job_status(e, wait, &running)
        try:
            check(st)
        except Exception as error:  # noqa: BLE001 - returned, for the caller to raise
            return error
        return None

    def read_tokens(self, int start, int timeout_ms, int top_n=-1):
        """(ids past the first `start` of the running job, finished), waiting up to timeout_ms;
        top_n >= 0: (ids, their TokenLogprobs with top_n alternatives, finished)."""
        cdef orcd_engine *e = self.live()
        cdef int32_t buf[READ_BATCH]
        cdef orcd_logprob records[READ_BATCH]
        cdef orcd_logprob *rp = records if top_n >= 0 else NULL
        cdef int n = 0, finished = 0
        cdef orcd_status st
        with nogil:
            st = orcd_engine_read_tokens(e, start, buf, READ_BATCH, timeout_ms, &n, &finished, rp)
        check(st)
        ids = [buf[i] for i in range(n)]
        if top_n < 0:
            return ids, bool(finished)
        return ids, [record(&records[i], top_n) for i in range(n)], bool(finished)

    def prompt_logprobs(self, int n, int top_n) -> list:
        """TokenLogprobs of prompt tokens 1..n of the job (once its first id is out or it ended)."""
        cdef orcd_engine *e = self.live()
        cdef orcd_logprob *out = <orcd_logprob *>PyMem_Malloc(max(n, 1) * sizeof(orcd_logprob))
        if out == NULL:
            raise MemoryError()
        try:
            check(orcd_engine_prompt_logprobs(e, out, n))
            return [record(&out[i], top_n) for i in range(n)]
        finally:
            PyMem_Free(out)

    def put_mask(self, int step, mask):
        """The allowed ids of generated token `step` (a uint32 bitmask) for a constrained job."""
        cdef const uint32_t[::1] m = np.ascontiguousarray(mask, dtype=np.uint32)
        check(orcd_engine_put_mask(self.live(), step, &m[0], <int>m.shape[0]))

    def cancel(self):
        orcd_engine_cancel(self.live())
