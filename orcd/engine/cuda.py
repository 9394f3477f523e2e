"""CudaEngine: the model in VRAM, the forward pass and the decode loop in the CUDA library.

The decode loop runs in C on a thread of its own (the GIL released) and publishes each id
to a ring in pinned host memory; `generate` drains the ring and yields ids as they appear.
"""
from __future__ import annotations

import pathlib
import threading
from typing import Iterator

import orcd.gguf
import orcd.tokenizer
from orcd.engine.base import Engine, context_for, quant_kind
from orcd.engine.sampling import SamplingParams
from orcd.errors import Cancelled, CudaError, InsufficientVram
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
            self._model.load(config, ctx, tensors, self.chunk_bytes, progress_cb)
        self.config, self.ctx = config, ctx
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
                 stop_ids: set[int], cancel: threading.Event) -> Iterator[int]:
        prompt_ids = self.prompt_ids(prompt_ids)
        if not self.check_residency():
            raise CudaError(f"VRAM residency check failed on GPU {self.gpu_device}: an "
                            f"allocation is not device memory; restart the worker")
        if cancel.is_set():
            raise Cancelled("the job was cancelled")
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self._model.generate(prompt_ids, params, max_tokens, stop_ids)
            except BaseException as e:  # handed to the generator's thread below
                errors.append(e)

        self._model.begin_job()
        thread = threading.Thread(target=run, name="orcd-decode", daemon=True)
        thread.start()
        produced = 0
        try:
            finished = False
            while not finished:
                if cancel.is_set():
                    self._model.cancel()
                alive = thread.is_alive()  # before the read: a dead thread's ring is final
                ids, finished = self._model.read_tokens(produced, POLL_MS)
                # A thread that died before reaching the C loop never finishes the ring.
                finished = finished or (not ids and not alive)
                produced += len(ids)
                yield from ids
        finally:
            if thread.is_alive():
                self._model.cancel()  # the consumer stopped early: end the loop
            thread.join()
            self._refresh()
        if errors:
            raise errors[0]

    def forward_logits(self, ids):
        """Logits (len(ids), vocab) of ids at positions 0.. from an empty cache (tests)."""
        return self._model.forward_logits(ids)

    def check_residency(self) -> bool:
        """Checks every device allocation (SPEC §4); the result is cached for health()."""
        resident = self._model.check_residency()
        self._health["resident"] = resident
        return resident

    def _refresh(self) -> None:
        self._health["vram_bytes_used"] = self._model.stats()["vram_bytes_used"]

    def health(self) -> dict:
        return dict(self._health)

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None
        self._health["vram_bytes_used"] = 0
