"""CudaEngine: the model in VRAM, the forward pass and the decode loop in the CUDA library.

The decode loop runs in C on a thread of its own (the GIL released) and publishes each id
to a ring in pinned host memory; `generate` drains the ring and yields ids as they appear.
The KV cache keeps the last job's rows for the next one's shared prefix (Engine.cached_ids).
"""
from __future__ import annotations

import pathlib
import threading
from typing import Iterator

import numpy as np

import orcd.gguf
import orcd.tokenizer
from orcd.engine.base import Engine, context_for, quant_kind
from orcd.engine.logprobs import Scoring
from orcd.engine.sampling import SamplingParams
from orcd.errors import Cancelled, CudaError, InsufficientVram, VramOom
from orcd.models import describe

LOAD_CHUNK_BYTES = 1 << 20  # SPEC §5: tensors reach VRAM in bounded chunks, 1 MiB by default
POLL_MS = 20  # longest wait for the next id before the cancel event is looked at again


def binding():
    """orcd._cuda, or a CudaError that says how to build it."""
    try:
        from orcd import _cuda
    except ImportError as e:
        raise CudaError(f"the CUDA library is not built ({e}): run `make compile`, or run "
                        f"with --device cpu for the NumPy reference backend") from None
    return _cuda


class CudaEngine(Engine):
    device = "cuda"

    def __init__(self, gpu_device: int = 0, chunk_bytes: int = LOAD_CHUNK_BYTES) -> None:
        super().__init__()
        self._cuda = binding()
        if self._cuda.device_count() == 0:
            raise CudaError("no CUDA GPU is visible (no device or no driver): run with "
                            "--device cpu for the NumPy reference backend")
        self.gpu_device = gpu_device
        self.chunk_bytes = chunk_bytes
        self._model = self._cuda.DeviceModel(gpu_device)
        info = self._cuda.device_info(gpu_device)
        self._health = {"device": "cuda", "gpu_device": gpu_device, "gpu_name": info["name"],
                        "sm": info["sm"], "cuda_runtime_version": self._cuda.runtime_version(),
                        "vram_bytes_used": 0, "resident": True}
        # The prompt start_job copies, as int32: its first len(_rows_hold) entries are
        # _rows_hold's ids; a job whose first n_cached ids are cached_ids' converts only the rest.
        self._rows = np.empty(0, np.int32)
        self._rows_hold: list[int] | None = None

    def load(self, path, ctx=None, progress_cb=None, tokenizer_json=None) -> None:
        path = pathlib.Path(path)
        if self._model is None:
            self._model = self._cuda.DeviceModel(self.gpu_device)
        with orcd.gguf.open(path) as f:
            config, kind = describe(f), quant_kind(f)
            self.tokenizer = orcd.tokenizer.load(path, tokenizer_json)
            ctx = context_for(config, ctx)
            tensors = list(f.tensors.values())
            self._check_vram(path, config, ctx, sum(t.nbytes for t in tensors))
            try:
                self._model.load(config, ctx, tensors, self.chunk_bytes, progress_cb)
            except VramOom as e:  # at load it is a start-up failure (SPEC §3), not a job's
                raise InsufficientVram(
                    f"{path} with --ctx {ctx} did not fit in GPU {self.gpu_device}'s VRAM: {e}; "
                    f"use a smaller --ctx, a smaller model, or a free GPU") from None
        self.config, self.ctx, self.cached_ids = config, ctx, []
        self._rows, self._rows_hold = np.empty(ctx, np.int32), None
        self._health.update(arch=config.arch, model=path.name, quant_kind=kind, context_length=ctx)
        self._refresh()

    def _check_vram(self, path, config, ctx: int, weight_bytes: int) -> None:
        required = self._cuda.vram_required(config, ctx, weight_bytes)
        available = self._cuda.device_info(self.gpu_device)["free_bytes"]
        if required > available:
            raise InsufficientVram(
                f"{path} with --ctx {ctx} needs {required} bytes of VRAM ({weight_bytes} of "
                f"weights, the rest KV cache and scratch) but GPU {self.gpu_device} has "
                f"{available} bytes free: use a smaller --ctx, a smaller model, or a free GPU")

    def generate(self, prompt_ids: list[int], params: SamplingParams, max_tokens: int,
                 stop_ids: set[int], cancel: threading.Event, n_cached: int = 0,
                 scoring: Scoring | None = None, constraint=None, on_start=None) -> Iterator[int]:
        prompt_ids = self.prompt_ids(prompt_ids)
        self._check_cached(prompt_ids, n_cached)
        if cancel.is_set():
            raise Cancelled("the job was cancelled")
        top_n = scoring.top_n if scoring is not None else -1
        with_prompt = scoring is not None and scoring.with_prompt
        if with_prompt:
            n_cached = 0  # the C loop prefills the whole prompt to score it
        # On the engine's own decode thread (C, no GIL): the prefill starts at once.
        model = self._model
        try:
            model.start_job(self._prompt_rows(prompt_ids, n_cached), params, max_tokens, stop_ids,
                            n_cached, top_n, with_prompt, constraint is not None)
        finally:  # after the launch, while the GPU prefills: 2,000 ids copied
            self.cached_ids = prompt_ids[:n_cached]  # what the rows hold should the job fail
            if self._rows_hold is prompt_ids:
                self._rows_hold = self.cached_ids
        job_rows = self.cached_ids
        produced: list[int] = []
        try:
            if on_start is not None:
                on_start()
            if constraint is not None:
                model.put_mask(0, constraint.allowed())
            finished = False
            while not finished:
                if cancel.is_set():
                    model.cancel()
                done = not model.job_running()  # before the read: a finished job's ring is final
                ids, records, finished = self._read(len(produced), top_n)
                finished = finished or (not ids and done)
                scored = with_prompt and not scoring.prompt and (ids or finished)
                if scored and model.job_error() is None:
                    scoring.prompt = model.prompt_logprobs(len(prompt_ids) - 1, top_n)
                for k, token in enumerate(ids):
                    if scoring is not None:
                        scoring.generated.append(records[k])
                    if constraint is not None and token not in stop_ids:
                        constraint.consume(token)  # and the next token's mask, while the GPU waits
                        model.put_mask(len(produced) + k + 1, constraint.allowed())
                produced += ids
                yield from ids
        finally:
            if model.job_running():
                model.cancel()  # the consumer stopped early: end the loop
            error = model.job_error(wait=True)
            self._refresh()
            # Every id but the last published one was decoded into the cache before the next
            # was published (read or not, ids published later only add rows).
            if produced and (error is None or isinstance(error, Cancelled)):
                self.cached_ids = prompt_ids + produced[:-1]
                if self._rows_hold is job_rows:  # no job has written the rows since this one
                    self._hold_rows(len(prompt_ids), produced[:-1])
            elif error is not None and not isinstance(error, Cancelled):
                self.cached_ids = []  # a failed step may have left any row half written
        if error is not None:
            raise error

    def _prompt_rows(self, prompt_ids: list[int], n_cached: int) -> np.ndarray:
        """prompt_ids as int32 for start_job, which copies the whole prompt: a resent
        conversation's first n_cached ids are cached_ids', which the rows already hold, so only
        the ids after them are converted (2,000 ids: 50 us, the new 40: 2)."""
        start = n_cached if self._rows_hold is self.cached_ids else 0
        self._rows_hold = None  # until every id is written
        self._rows[start:len(prompt_ids)] = prompt_ids[start:] if start else prompt_ids
        self._rows_hold = prompt_ids
        return self._rows[:len(prompt_ids)]

    def _hold_rows(self, start: int, ids: list[int]) -> None:
        """cached_ids' ids from `start` on written after the rows' (which hold the ones before)."""
        if start + len(ids) <= len(self._rows):
            self._rows[start:start + len(ids)] = ids
            self._rows_hold = self.cached_ids

    def _read(self, start: int, top_n: int):
        """(ids, their TokenLogprobs or None, finished) from the token ring."""
        if top_n < 0:
            ids, finished = self._model.read_tokens(start, POLL_MS)
            return ids, None, finished
        return self._model.read_tokens(start, POLL_MS, top_n)

    def job_marks(self) -> dict[str, int]:
        """The C decode loop's stamps of the running job (orcd_engine_job_times)."""
        return {f"engine_{name}": ns for name, ns in self._model.job_times().items()}

    def forward_logits(self, ids):
        """Logits (len(ids), vocab) of ids at positions 0.. from an empty cache (tests)."""
        self.cached_ids = []
        return self._model.forward_logits(ids)

    def check_residency(self) -> bool:
        """Checks every device allocation (SPEC §4); the result is cached for health()."""
        resident = self._model.check_residency()
        self._health["resident"] = resident
        return resident

    def _refresh(self) -> None:
        self._health["vram_bytes_used"] = self._model.stats()["vram_bytes_used"]
        self._health["resident"] = self._model.resident()  # the job's own check (SPEC §4)

    def health(self) -> dict:
        return dict(self._health)

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None
        self.cached_ids = []
        self._health["vram_bytes_used"] = 0

