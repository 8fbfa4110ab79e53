"""The accountability statistics against a simulation with known truth (no database needed)."""

import pytest

from exceptions_app.accountability import estimates
from exceptions_app.accountability.estimates import BandCounts, Judgement
from exceptions_app.accountability.sampling import SamplingPlan, sample_draw
from tests.unit.accountability_simulation import fresh_error_at, simulate

SEEDS = range(120)


def test_wilson_matches_the_textbook_values():
    low, high = estimates.wilson(0.1, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    low, high = estimates.wilson(0.0, 50)
    assert low == 0.0
    assert 0.06 < high < 0.08


def test_equal_weights_give_the_unweighted_wilson_interval():
    observations = [(index < 7, 20.0) for index in range(100)]
    rate = estimates.weighted_rate(observations)
    assert rate.estimate == pytest.approx(0.07)
    assert rate.effective_n == pytest.approx(100)
    assert (rate.low, rate.high) == pytest.approx(estimates.wilson(0.07, 100))


def test_unequal_weights_shrink_the_effective_sample_and_widen_the_interval():
    even = estimates.weighted_rate([(index % 10 == 0, 1.0) for index in range(200)])
    uneven = estimates.weighted_rate([(index % 10 == 0, 1.0 if index % 2 else 9.0) for index in range(200)])
    assert uneven.effective_n < 200 * 0.7
    assert uneven.high - uneven.low > even.high - even.low


def test_no_judgement_is_unknown_not_zero():
    assert estimates.unattended_error([]) == estimates.UNKNOWN
    assert estimates.expected_wrong(1000, estimates.UNKNOWN).as_dict() == {"estimate": None, "low": None, "high": None}


def test_expected_wrong_scales_every_bound_by_the_proceeds():
    rate = estimates.weighted_rate([(index < 2, 1.0) for index in range(100)])
    wrong = estimates.expected_wrong(5000, rate)
    assert wrong.estimate == pytest.approx(100)
    assert wrong.low == pytest.approx(5000 * rate.low)
    assert wrong.high == pytest.approx(5000 * rate.high)


def test_bands_split_at_their_edges():
    assert estimates.band_index(0.0) == 0
    assert estimates.band_index(0.15) == 3  # 0.15 / 0.05 is 2.999... in floating point
    assert estimates.band_index(0.999) == 19
    assert estimates.band_index(1.0) == 19
    assert estimates.band_bounds(19) == (0.95, 1.0)
    assert estimates.band_count(0.1) == 10


def test_stratified_sampling_uses_the_first_stratum_below_the_confidence():
    plan = SamplingPlan(proceed_rate=0.02, reject_rate=0.05, strata=((0.93, 0.3), (0.97, 0.1)))
    assert plan.probability("proceed", 0.91) == 0.3
    assert plan.probability("proceed", 0.95) == 0.1
    assert plan.probability("proceed", 0.99) == 0.02
    assert plan.probability("reject", 0.1) == 0.05
    assert plan.probability("hold", 0.5) is None
    assert SamplingPlan(proceed_rate=0.1).probability("reject", 0.1) is None
    assert not sample_draw(None)
    assert sample_draw(0.3, draw=lambda: 0.29)
    assert not sample_draw(0.3, draw=lambda: 0.3)


def test_the_95_interval_contains_the_true_unattended_rate_in_at_least_90_percent_of_runs():
    covered = 0
    for seed in SEEDS:
        run = simulate(seed, decisions=3000)
        rate = estimates.unattended_error(run.judgements)
        covered += rate.low <= run.true_unattended_rate <= rate.high
    assert covered / len(SEEDS) >= 0.90, covered


def test_the_estimate_is_unbiased_under_stratified_sampling():
    """Weighting by 1/p matters: the audits oversample the riskier band below 0.95."""
    weighted, unweighted, truth = [], [], []
    for seed in range(40):
        run = simulate(seed)
        audits = [judgement for judgement in run.judgements if judgement.audit]
        weighted.append(estimates.unattended_error(audits).estimate)
        unweighted.append(sum(judgement.wrong for judgement in audits) / len(audits))
        truth.append(run.true_unattended_rate)
    mean = sum(truth) / len(truth)
    assert abs(sum(weighted) / len(weighted) - mean) < 0.15 * mean
    assert sum(unweighted) / len(unweighted) > sum(weighted) / len(weighted)


def test_the_recommended_threshold_meets_the_target_on_fresh_data():
    target = 0.04
    fresh: dict[float, float] = {}  # one fresh data set, never seen by the estimates
    met = tried = 0
    for seed in range(10):
        run = simulate(seed, decisions=15_000)
        curve = estimates.tradeoff_curve(
            judgements=run.judgements, bands=run.bands, width=0.05, current_auto_approve=0.9, window_days=1.0
        )
        recommended = estimates.recommended_threshold(curve, target)
        if recommended is None:
            continue  # too little data to promise the target: recommending nothing is the safe answer
        threshold = recommended["threshold"]
        if threshold not in fresh:
            fresh[threshold] = fresh_error_at(threshold, 999, decisions=60_000)
        tried += 1
        met += fresh[threshold] <= target
    assert tried >= 7, tried
    assert met / tried >= 0.9, (met, tried, fresh)


def test_the_tradeoff_curve_reviews_less_as_the_threshold_falls():
    run = simulate(3, decisions=20_000)
    curve = estimates.tradeoff_curve(
        judgements=run.judgements, bands=run.bands, width=0.05, current_auto_approve=0.9, window_days=2.0
    )
    rates = [point["review_rate"] for point in curve]
    assert rates == sorted(rates)
    by_threshold = {point["threshold"]: point for point in curve}
    assert by_threshold[0.95]["holds_per_day"] > by_threshold[0.5]["holds_per_day"]
    errors = [point["error"]["estimate"] for point in curve if point["error"]["estimate"] is not None]
    assert errors[0] > errors[-1]


def test_a_band_with_decisions_but_no_judgement_is_never_recommended():
    bands = {18: BandCounts(decisions=100, proceeds=100), 19: BandCounts(decisions=100, proceeds=100)}
    judgements = [Judgement(0.97, False, 0.5) for _ in range(50)]
    curve = estimates.tradeoff_curve(
        judgements=judgements, bands=bands, width=0.05, current_auto_approve=0.9, window_days=1.0
    )
    by_threshold = {point["threshold"]: point for point in curve}
    assert by_threshold[0.9]["error"]["high"] is None
    assert by_threshold[0.95]["error"]["high"] is not None
    assert estimates.recommended_threshold(curve, 0.2)["threshold"] == 0.95
    assert estimates.recommended_threshold(curve, None) is None


def test_reliability_curve_tracks_the_true_agreement_per_band():
    run = simulate(5, decisions=30_000)
    curve = estimates.reliability_curve(run.judgements, 0.05)
    from tests.unit.accountability_simulation import true_error

    for point in curve:
        if point["judged"] >= 200:
            truth = 1 - true_error((point["lower"] + point["upper"]) / 2)
            assert point["low"] - 0.03 <= truth <= point["high"] + 0.03, point


def test_no_decisions_recommend_nothing():
    curve = estimates.tradeoff_curve(judgements=[], bands={}, width=0.05, current_auto_approve=0.9, window_days=1.0)
    assert curve == []
    assert estimates.recommended_threshold(curve, 0.05) is None
