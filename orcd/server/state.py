"""What the HTTP handlers share: the job runner, the counters, the cached health and the
shutdown sequence. Health is built from the engine once and refreshed off the request path."""
from __future__ import annotations

import asyncio

from orcd.logging import Narrator
from orcd.server.jobs import JobRunner
from orcd.server.metrics import Metrics

HEALTH_REFRESH_SEC = 1.0  # engine.health() is a copy of a cached dict
# Fields an engine may lack (the CPU engine has no GPU); they read as null, never missing.
HEALTH_FIELDS = ("arch", "model", "resident", "quant_kind", "vram_bytes_used", "context_length",
                 "gpu_name", "sm", "cuda_runtime_version", "device")


class ServerState:
    def __init__(self, engine, narrator: Narrator, engine_thread, *, worker_id: str, gpu_device: int, ctx: int,
                 max_tokens_out: int, timeout_sec: float, residency_check_sec: float = 60.0,
                 prompt_cache: bool = True, queue_depth: int = 16, queue_timeout_sec: float = 300.0):
        self.engine = engine
        self.narrator = narrator
        self.worker_id = worker_id
        self.gpu_device = gpu_device
        self.metrics = Metrics()
        self.health = self._health_from_engine()
        self.model = self.health["model"]
        self.vocab_size = engine.tokenizer.vocab_size
        self.runner = JobRunner(engine, engine_thread, narrator, self.metrics, model=self.model, ctx=ctx,
                                max_tokens_out=max_tokens_out, timeout_sec=timeout_sec,
                                prompt_cache=prompt_cache, queue_depth=queue_depth,
                                queue_timeout_sec=queue_timeout_sec)
        self.engine_thread = engine_thread
        self.residency_check_sec = residency_check_sec
        self.stopped = asyncio.Event()
        self.stopping = False

    def _health_from_engine(self) -> dict:
        reported = self.engine.health()
        health = {key: reported.get(key) for key in HEALTH_FIELDS}
        health.update(worker_id=self.worker_id, gpu_device=self.gpu_device,
                      tokenizer_kind=self.engine.tokenizer.kind,
                      vocab_size=self.engine.tokenizer.vocab_size)
        return health

    def health_now(self) -> dict:
        """The cached health with the live fields; no engine call."""
        resident = bool(self.health["resident"])
        return {"status": "healthy" if resident and not self.stopping else "unhealthy",
                **self.health,
                "uptime_seconds": round(self.metrics.uptime(), 3),
                "busy": self.runner.busy,
                "queue_depth": len(self.runner.queue)}

    async def watch_engine(self) -> None:
        """Refresh the cached health off the request path, and check VRAM residency (SPEC §4)
        on the engine thread every residency_check_sec while no job runs (the engine also
        checks before each job); narrate a lost residency once."""
        loop = asyncio.get_running_loop()
        check = getattr(self.engine, "check_residency", None)
        last_check = loop.time()
        while True:
            await asyncio.sleep(HEALTH_REFRESH_SEC)
            if self.stopping:  # the engine is being freed
                return
            if check and not self.runner.busy and loop.time() - last_check >= self.residency_check_sec:
                last_check = loop.time()
                await loop.run_in_executor(self.engine_thread, check)
            was_resident = self.health["resident"]
            self.health = self._health_from_engine()
            if was_resident and not self.health["resident"]:
                self.narrator.event("residency_check_failed", "a device allocation is no longer "
                                    "resident in VRAM; reporting unhealthy", level="critical")

    def begin_shutdown(self, why: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.narrator.event("shutdown", f"shutting down: {why}")
        asyncio.get_running_loop().create_task(self._shutdown())

    async def _shutdown(self) -> None:
        await self.runner.drain()
        self.stopped.set()
