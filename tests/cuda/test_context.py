import pytest

from orcd import _cuda
from orcd.errors import CudaError


def test_device_count_is_a_count_without_crashing():
    assert _cuda.device_count() >= 0


def test_runtime_version_is_cuda_13_or_later():
    major = int(_cuda.runtime_version().split(".")[0])
    assert major >= 12


def test_missing_device_is_a_clear_error():
    with pytest.raises(CudaError, match="GPU device 99 not found"):
        _cuda.device_info(99)


@pytest.mark.gpu
def test_device_info_of_device_zero():
    info = _cuda.device_info(0)
    assert info["sm"] >= 70 and info["name"]
    assert 0 < info["free_bytes"] <= info["total_bytes"]
