"""Model descriptions: hyper-parameters from GGUF metadata, each architecture's tensor map,
memory estimates, and where the real model files live."""
from orcd.models.config import ARCHITECTURES, ModelConfig, config_from_metadata
from orcd.models.memory import VramEstimate, parameter_count, vram_estimate
from orcd.models.paths import bundled_path, real_path
from orcd.models.tensors import check_tensors, describe, expected_tensors, optional_tensors

__all__ = ["ARCHITECTURES", "ModelConfig", "VramEstimate", "bundled_path", "check_tensors",
           "config_from_metadata", "describe", "expected_tensors", "optional_tensors",
           "parameter_count", "real_path", "vram_estimate"]
