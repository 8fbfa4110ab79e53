"""The agreement arithmetic against hand-worked textbook examples (computed independently of this
code: the published figures), plus the edge cases where kappa is undefined."""

from collections import Counter

import pytest

from exceptions_app.accountability.agreement import (
    bootstrap_interval,
    cohen_kappa,
    fleiss_kappa,
    percent_agreement,
    wilson_interval,
)

# Fleiss (1971) as worked in Wikipedia's "Fleiss' kappa" article: 10 subjects, 14 raters, 5 categories.
# Published: P-bar = 0.378, P-bar-e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def as_items(table) -> list[Counter]:
    return [Counter({f"c{column}": count for column, count in enumerate(row) if count}) for row in table]


def test_fleiss_kappa_matches_the_published_worked_example():
    items = as_items(FLEISS_TABLE)

    assert percent_agreement(items) == pytest.approx(0.378, abs=5e-4)
    assert fleiss_kappa(items) == pytest.approx(0.210, abs=5e-4)


def test_cohen_kappa_matches_the_published_worked_example():
    # Wikipedia's "Cohen's kappa" example: 50 grant proposals, both yes 20, A yes B no 5, A no B yes 10,
    # both no 15. Published: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15

    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_two_raters_give_the_same_fleiss_and_cohen_kappa_up_to_the_chance_term():
    # With two raters Fleiss' kappa is Scott's pi: pooled marginals. Hand-computed for this table:
    # p_o = 0.8; pooled marginals a = 0.5, b = 0.5 -> p_e = 0.5 -> pi = 0.6; Cohen uses each rater's own
    # marginals (0.6/0.4 and 0.4/0.6) -> p_e = 0.48 -> kappa = 0.32 / 0.52.
    pairs = [("a", "a")] * 4 + [("b", "b")] * 4 + [("a", "b")] * 2
    items = [Counter([first, second]) for first, second in pairs]

    assert fleiss_kappa(items) == pytest.approx(0.6)
    assert cohen_kappa(pairs) == pytest.approx(0.32 / 0.52)


def test_kappa_is_undefined_when_everyone_always_says_the_same():
    assert fleiss_kappa([Counter({"approve": 2})] * 5) is None
    assert cohen_kappa([("approve", "approve")] * 5) is None
    assert fleiss_kappa([]) is None
    assert cohen_kappa([]) is None
    assert percent_agreement([Counter({"approve": 1})]) is None  # one judge agrees with nobody


def test_wilson_interval_matches_a_hand_computed_value():
    # 8 of 10, z = 1.96: centre (0.8 + 0.1921) / 1.3841 = 0.7167; half-width 0.2271 -> (0.490, 0.943).
    low, high = wilson_interval(8, 10)

    assert (low, high) == (pytest.approx(0.4902, abs=1e-3), pytest.approx(0.9433, abs=1e-3))
    assert wilson_interval(0, 0) is None


def test_the_bootstrap_interval_holds_the_estimate_and_narrows_with_more_items():
    pairs = [("a", "a")] * 4 + [("b", "b")] * 4 + [("a", "b")] * 2
    small = bootstrap_interval(pairs, cohen_kappa)
    large = bootstrap_interval(pairs * 10, cohen_kappa)

    assert small[0] <= cohen_kappa(pairs) <= small[1]
    assert large[1] - large[0] < small[1] - small[0]
    assert bootstrap_interval(pairs, cohen_kappa) == small  # a fixed seed: the same data, the same interval
    assert bootstrap_interval(pairs[:1], cohen_kappa) is None
