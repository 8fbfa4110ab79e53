"""The drift breaker's sequential test: a Bernoulli CUSUM (Page, 1954) on a stream of judgements.

Each judged output adds its log-likelihood ratio of "the rate has risen to ``detect``" against
"it is still ``baseline``" to a score floored at zero; the workflow trips when the score reaches
``threshold`` (h). A wrong output adds ln(detect/baseline), a right one subtracts
ln((1-baseline)/(1-detect)). h bounds false alarms: the expected run length before a false
alarm at the baseline grows about exponentially with h, and the delay to detect a shift to
``detect`` is about h divided by the per-judgement drift (the Kullback-Leibler divergence).
With the defaults (baseline 0.02, detect 0.10, h 12) a simulation of 200 seeded runs gave no
false alarm within 20,000 in-control judgements and a median delay of 44 judgements (at most 154)
after a jump to 20% (tests/unit/test_accountability_breaker.py pins both over 50 seeded runs;
docs/accountability.md has the figures).
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_THRESHOLD = 12.0


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
