"""Engines: one model, token ids out. `create_engine` picks the CUDA or the NumPy one."""
from __future__ import annotations

from orcd.engine.base import Engine


def create_engine(device: str, gpu_device: int = 0) -> Engine:
    """An unloaded engine for `device` ("cuda" or "cpu"); call .load(path) next."""
    if device == "cpu":
        from orcd.engine.cpu import CpuEngine
        return CpuEngine()
    if device == "cuda":
        from orcd.engine.cuda import CudaEngine
        return CudaEngine(gpu_device)
    raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")


__all__ = ["Engine", "create_engine"]
