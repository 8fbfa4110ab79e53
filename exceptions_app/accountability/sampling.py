"""Which unattended verdicts are copied to an audit queue, and with what probability. Pure Python.

Every proceed has a positive probability of being sampled (the policy schema refuses a zero rate),
so inverse-probability weights exist for all of them and the estimates are unbiased.
"""

import random
from dataclasses import dataclass

DEFAULT_AUDIT_SLA_SECONDS = 86_400
_draws = random.Random()  # noqa: S311 - a statistical sample, not a secret


@dataclass(frozen=True)
class SamplingPlan:
    proceed_rate: float
    reject_rate: float = 0.0
    # (below, rate): a proceed whose confidence is below ``below`` (the first such stratum) is
    # sampled at ``rate``, so the bands near the threshold, where calibration matters, get data.
    strata: tuple[tuple[float, float], ...] = ()
    queue: str | None = None
    sla_seconds: int = DEFAULT_AUDIT_SLA_SECONDS

    @classmethod
    def from_document(cls, sampling: dict | None) -> "SamplingPlan | None":
        if not sampling:
            return None
        return cls(
            proceed_rate=float(sampling["proceed_rate"]),
            reject_rate=float(sampling.get("reject_rate", 0.0)),
            strata=tuple((float(s["below"]), float(s["proceed_rate"])) for s in sampling.get("strata", [])),
            queue=sampling.get("queue"),
            sla_seconds=int(sampling.get("sla_seconds", DEFAULT_AUDIT_SLA_SECONDS)),
        )

    def probability(self, verdict: str, confidence: float) -> float | None:
        """The chance this verdict is sampled; None when it is never a candidate (a hold, or a reject
        the policy does not sample)."""
        if verdict == "proceed":
            return next((rate for below, rate in self.strata if confidence < below), self.proceed_rate)
        if verdict == "reject" and self.reject_rate > 0:
            return self.reject_rate
        return None


def sample_draw(probability: float | None, draw=_draws.random) -> bool:
    return probability is not None and draw() < probability
