"""The drift breaker's CUSUM over seeded runs of the demo's audit configuration, counted in
unattended decisions (proceeds): it trips soon after the error rate jumps and stays quiet without one."""

import math
import random

import pytest

from exceptions_app.accountability.breaker import DEFAULT_THRESHOLD, MIN_AUDIT_RATE, Cusum
from exceptions_app.accountability.sampling import SamplingPlan
from tests.unit.accountability_simulation import breaker_trip, demo_breaker_policy

PLAN, BREAKER, AUTO_APPROVE = demo_breaker_policy()
JUMP_RUNS = range(100)
QUIET_RUNS = range(40)


def _stream(rng: random.Random, rate: float, length: int):
    return (rng.random() < rate for _ in range(length))


def _trips_after_jump(plan: SamplingPlan, cusum: Cusum = BREAKER) -> list[int | None]:
    """Per seeded run: how many proceeds after the jump from 2% to 20% it took to trip (None: not
    within 300, or a false alarm in the 1,000 in-control proceeds before it)."""
    trips = []
    for seed in JUMP_RUNS:
        trip = breaker_trip(seed, plan=plan, cusum=cusum, auto_approve=AUTO_APPROVE, steady=1000, shifted=300)
        trips.append(trip[1] if trip is not None and trip[0] == "shifted" else None)
    return trips


def test_the_demo_policy_is_the_configuration_under_test():
    assert (BREAKER.baseline, BREAKER.detect, BREAKER.threshold) == (0.02, 0.20, DEFAULT_THRESHOLD)
    assert min(PLAN.proceed_rate, *(rate for _, rate in PLAN.strata)) >= MIN_AUDIT_RATE


def test_steps_are_the_log_likelihood_ratios():
    assert BREAKER.wrong_step == pytest.approx(math.log(10))
    assert BREAKER.right_step == pytest.approx(math.log(0.8 / 0.98))
    assert BREAKER.step(0.0, wrong=False) == 0.0  # floored at zero


def test_it_trips_within_300_decisions_after_the_error_rate_jumps_from_2_to_20_percent_in_95_percent_of_runs():
    trips = _trips_after_jump(PLAN)
    within = [trip for trip in trips if trip is not None]
    assert len(within) >= 0.95 * len(trips), sorted(within)
    assert sorted(within)[len(within) // 2] < 200  # the median run trips well before the bound


def test_it_stays_quiet_over_20000_decisions_with_no_change():
    for seed in QUIET_RUNS:
        assert breaker_trip(10_000 + seed, plan=PLAN, cusum=BREAKER, auto_approve=AUTO_APPROVE, steady=20_000) is None


def test_auditing_less_than_the_minimum_misses_the_300_decision_target():
    """Why the policy refuses a breaker on thin sampling: at 10% it sees too few judgements."""
    thin = SamplingPlan(proceed_rate=0.10, strata=((0.95, 0.10),))
    trips = _trips_after_jump(thin)
    assert sum(trip is not None for trip in trips) < 0.8 * len(trips)


def test_a_lower_threshold_would_raise_false_alarms():
    """The threshold is what bounds false alarms: the quiet test above could fail."""
    jumpy = Cusum(baseline=0.02, detect=0.20, threshold=4.0)
    alarms = sum(jumpy.first_trip(_stream(random.Random(10_000 + seed), 0.02, 6000)) is not None for seed in QUIET_RUNS)
    assert alarms > len(QUIET_RUNS) // 2


@pytest.mark.parametrize(
    ("baseline", "detect", "threshold"), [(0.1, 0.05, 5), (0.0, 0.1, 5), (0.1, 1.0, 5), (0.1, 0.2, 0)]
)
def test_parameters_that_cannot_detect_a_rise_are_refused(baseline, detect, threshold):
    with pytest.raises(ValueError, match=r"baseline|threshold"):
        Cusum(baseline, detect, threshold)
