import math

import numpy as np
import pytest

from orcd.engine.sampling import SamplingParams, philox4x32_10, sample, uniform
from orcd.errors import InvalidRequest

# Random123 kat_vectors, philox4x32 with 10 rounds: (counter, key) -> output
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    assert philox4x32_10(key, counter) == expected


def test_uniform_is_the_top_24_bits_of_philox_word_0():
    assert uniform(0, 0) == np.float32((0x6627E8D5 >> 8) * 2.0**-24)
    seed, step = 0xA4093822_299F31D0, 0x85A308D3_243F6A88  # key (lo, hi), counter (lo, hi)
    word = philox4x32_10((0x299F31D0, 0xA4093822), (0x243F6A88, 0x85A308D3, 0, 0))[0]
    assert uniform(seed, step) == np.float32((word >> 8) * 2.0**-24)


def params(**kw) -> SamplingParams:
    return SamplingParams(**kw).validate(vocab_size=1000)


def test_temperature_zero_is_argmax_lowest_id_on_ties():
    logits = np.array([0.0, 3.0, 1.0, 3.0], np.float32)
    assert sample(logits, params(temperature=0.0), 0, []) == 1


def test_repetition_penalty_divides_positive_and_multiplies_negative():
    logits = np.array([2.0, 1.5, -1.0, -1.2], np.float32)
    greedy = params(temperature=0.0, repetition_penalty=1.5)
    assert sample(logits, greedy, 0, [0]) == 1          # 2.0 / 1.5 < 1.5
    assert sample(logits[2:], greedy, 0, [0]) == 1      # -1.0 * 1.5 < -1.2
    assert sample(logits, greedy, 0, [0, 0, 1]) == 0    # each id penalised once: 1.333 > 1.0


def test_top_k_one_is_greedy_whatever_the_seed():
    logits = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    for seed in range(50):
        assert sample(logits, params(top_k=1, seed=seed), seed, []) == int(np.argmax(logits))


def draws(logits, n=3000, **kw) -> np.ndarray:
    return np.bincount([sample(logits, params(seed=7, **kw), step, []) for step in range(n)],
                       minlength=len(logits))


LOG_P = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))


def test_draws_follow_the_softmax():
    freq = draws(LOG_P) / 3000
    # 3000 draws: one standard deviation of a frequency near 0.5 is 0.009
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_temperature_sharpens():
    freq = draws(LOG_P, temperature=0.5) / 3000
    expected = np.array([0.5, 0.3, 0.15, 0.05]) ** 2
    np.testing.assert_allclose(freq, expected / expected.sum(), atol=0.03)  # as above


@pytest.mark.parametrize("kw,support", [
    (dict(top_p=0.5), 1),         # 0.5 reaches 0.5: the shortest prefix is one token
    (dict(top_p=0.79), 2),
    (dict(top_p=0.81), 3),
    (dict(min_p=0.5), 2),         # keeps p >= 0.25
    (dict(min_p=0.2), 3),         # keeps p >= 0.1
    (dict(top_k=3), 3),
    (dict(top_k=2, top_p=0.9), 2),
])
def test_truncations_keep_the_expected_tokens(kw, support):
    counts = draws(LOG_P, n=600, **kw)
    assert counts[:support].all() and not counts[support:].any()


def test_same_seed_and_step_replay_and_steps_differ():
    logits = np.zeros(1000, np.float32)
    picks = [sample(logits, params(seed=123), step, []) for step in range(20)]
    assert picks == [sample(logits, params(seed=123), step, []) for step in range(20)]
    assert len(set(picks)) > 15
    assert picks != [sample(logits, params(seed=124), step, []) for step in range(20)]


def test_sampling_leaves_the_logits_alone():
    logits = np.array([1.0, 2.0, 3.0], np.float32)
    sample(logits, params(repetition_penalty=1.3, temperature=0.7), 0, [2])
    np.testing.assert_array_equal(logits, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("field,value", [
    ("temperature", -0.1), ("temperature", 2.01), ("temperature", math.nan), ("temperature", "1"),
    ("top_p", 0.0), ("top_p", 1.5), ("top_k", -1), ("top_k", 1001), ("top_k", 2.0), ("top_k", True),
    ("min_p", -0.01), ("min_p", 1.01), ("repetition_penalty", 0.0), ("repetition_penalty", 2.5),
    ("temperature", 0.005), ("temperature", 1e-40), ("repetition_penalty", 1e-40),
    ("seed", -1), ("seed", 2**64), ("seed", 1.0),
])
def test_validate_names_the_field(field, value):
    with pytest.raises(InvalidRequest, match=field):
        SamplingParams(**{field: value}).validate(vocab_size=1000)


def test_validate_accepts_the_edges():
    SamplingParams(temperature=0, top_p=1, top_k=1000, min_p=1.0, repetition_penalty=2,
                   seed=2**64 - 1).validate(vocab_size=1000)
    SamplingParams(temperature=0.01, repetition_penalty=0.01).validate(vocab_size=1000)


@pytest.mark.parametrize("temperature, penalty", [(0.01, 0.01), (0.01, 2.0), (2.0, 0.01)])
def test_every_allowed_value_keeps_the_scores_finite(temperature, penalty):
    """At the floors of the ranges, logits far beyond a real model's (|l| <= 1e4) stay finite
    through penalty, temperature and softmax: no overflow, no NaN."""
    logits = np.linspace(-1e4, 1e4, 1000, dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is exact enough
        drawn = sample(logits, params(temperature=temperature, repetition_penalty=penalty, top_p=0.9,
                                      min_p=0.01), 0, list(range(0, 1000, 3)))
    assert 0 <= drawn < 1000


def test_ties_at_the_top_k_boundary_keep_the_lower_ids():
    logits = np.array([0.0, 1.0, 1.0, 1.0], np.float32)
    counts = np.bincount([sample(logits, params(top_k=2, seed=3), s, []) for s in range(300)], minlength=4)
    assert counts[1] and counts[2] and not counts[0] and not counts[3]
