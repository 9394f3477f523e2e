"""random_blocks: valid data of a chosen spread, reproducible, with per-block scales."""
import numpy as np
import pytest

from orcd import quant

SERVED = [t.name for t in quant.BLOCKS]
BLOCKED = [t.name for t, (block, _) in quant.BLOCKS.items() if block > 1]


def random_values(name, shape, seed, scale=0.02):
    raw = quant.random_blocks(name, shape, np.random.default_rng(seed), scale)
    return quant.dequantize(raw, name, shape)


@pytest.mark.parametrize("name", SERVED)
@pytest.mark.parametrize("scale", [0.02, 1.0])
def test_values_are_finite_with_roughly_the_requested_std(name, scale):
    values = random_values(name, (64, 2048), 12, scale)
    assert np.all(np.isfinite(values))
    # scales are jittered per block and MXFP4's are powers of two (up to sqrt(2) off): roughly
    assert scale / 1.5 < values.std() < scale * 1.5


@pytest.mark.parametrize("name", SERVED)
def test_same_seed_same_bytes(name):
    a = quant.random_blocks(name, (4, 512), np.random.default_rng(13))
    b = quant.random_blocks(name, (4, 512), np.random.default_rng(13))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", BLOCKED)
def test_blocks_differ_in_scale(name):
    """A kernel reading the wrong block's scale must show up, so blocks do not share one."""
    block = quant.format_of(name).block_size
    spreads = np.abs(random_values(name, (1, 64 * block), 14).reshape(64, block)).max(-1)
    assert len(np.unique(spreads)) >= 3  # MXFP4 exponents span 3 octaves; fp16 scales vary more
