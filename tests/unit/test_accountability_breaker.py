"""The drift breaker's CUSUM over seeded runs: it trips soon after a jump and stays quiet without one."""

import math
import random

import pytest

from exceptions_app.accountability.breaker import DEFAULT_THRESHOLD, Cusum

BREAKER = Cusum(baseline=0.02, detect=0.10)
RUNS = range(50)


def _stream(rng: random.Random, rate: float, length: int):
    return (rng.random() < rate for _ in range(length))


def test_steps_are_the_log_likelihood_ratios():
    assert BREAKER.wrong_step == pytest.approx(math.log(5))
    assert BREAKER.right_step == pytest.approx(math.log(0.9 / 0.98))
    assert BREAKER.step(0.0, wrong=False) == 0.0  # floored at zero
    assert BREAKER.threshold == DEFAULT_THRESHOLD


def test_it_trips_within_300_decisions_after_the_error_rate_jumps_from_2_to_20_percent():
    for seed in RUNS:
        rng = random.Random(seed)
        score = 0.0
        for wrong in _stream(rng, 0.02, 1000):  # a long in-control stretch first, as in production
            score = BREAKER.step(score, wrong)
        assert not BREAKER.tripped(score), seed
        trip = BREAKER.first_trip(_stream(rng, 0.20, 300), score=score)
        assert trip is not None, seed
        assert trip < 300, seed


def test_it_stays_quiet_over_20000_decisions_with_no_change():
    for seed in RUNS:
        assert BREAKER.first_trip(_stream(random.Random(10_000 + seed), 0.02, 20_000)) is None, seed


def test_a_lower_threshold_would_raise_false_alarms():
    """The threshold is what bounds false alarms: the test above could fail."""
    jumpy = Cusum(baseline=0.02, detect=0.10, threshold=3.0)
    alarms = sum(jumpy.first_trip(_stream(random.Random(10_000 + seed), 0.02, 20_000)) is not None for seed in RUNS)
    assert alarms > 25


@pytest.mark.parametrize(
    ("baseline", "detect", "threshold"), [(0.1, 0.05, 5), (0.0, 0.1, 5), (0.1, 1.0, 5), (0.1, 0.2, 0)]
)
def test_parameters_that_cannot_detect_a_rise_are_refused(baseline, detect, threshold):
    with pytest.raises(ValueError, match=r"baseline|threshold"):
        Cusum(baseline, detect, threshold)
