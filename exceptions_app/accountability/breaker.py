"""The drift breaker's sequential test: a Bernoulli CUSUM (Page, 1954) on a stream of judgements.

Each judged output adds its log-likelihood ratio of "the rate has risen to ``detect``" against
"it is still ``baseline``" to a score floored at zero; the workflow trips when the score reaches
``threshold`` (h). A wrong output adds ln(detect/baseline), a right one subtracts
ln((1-baseline)/(1-detect)). h bounds false alarms: the expected run length before a false
alarm at the baseline grows about exponentially with h, and the delay to detect a shift to
``detect`` is about h divided by the per-judgement drift (the Kullback-Leibler divergence).

The breaker sees only judged audit samples, so its delay counted in unattended decisions is its
delay in judgements divided by the audit rate. With baseline 0.02, detect 0.20 and h 12 (the demo
policies), auditing ``MIN_AUDIT_RATE`` of proceeds, 5,000 seeded runs of bench/breaker.py tripped a
median of 119 proceeds after a jump from 2% to 20% (95th percentile 259: within 300 in 97.8% of
runs) and raised a false alarm within 20,000 proceeds at 2% in 0.28% of runs. At a 10% audit rate
it would need about three times as many proceeds, hence the minimum, which the policy enforces
(docs/accountability.md; tests/unit/test_accountability_breaker.py pins it over seeded runs).
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_THRESHOLD = 12.0
# The least share of proceeds a policy whose breaker watches audits must sample, at every
# confidence: below it the breaker sees too few judgements to trip within 300 unattended decisions.
MIN_AUDIT_RATE = 0.30


@dataclass(frozen=True)
class Cusum:
    baseline: float
    detect: float
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if not 0 < self.baseline < self.detect < 1:
            raise ValueError("need 0 < baseline < detect < 1")
        if self.threshold <= 0:
            raise ValueError("threshold must be positive")

    @property
    def wrong_step(self) -> float:
        return math.log(self.detect / self.baseline)

    @property
    def right_step(self) -> float:
        return math.log((1 - self.detect) / (1 - self.baseline))  # negative

    def step(self, score: float, wrong: bool) -> float:
        return max(0.0, score + (self.wrong_step if wrong else self.right_step))

    def tripped(self, score: float) -> bool:
        return score >= self.threshold

    def first_trip(self, outcomes: Iterable[bool], score: float = 0.0) -> int | None:
        """Index of the judgement at which the breaker trips, or None if it stays quiet."""
        for index, wrong in enumerate(outcomes):
            score = self.step(score, wrong)
            if self.tripped(score):
                return index
        return None
