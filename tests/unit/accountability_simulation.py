"""A simulated gate with known truth, at the statistics layer: outputs with a confidence, a
ground-truth error model per confidence band, a policy that proceeds, holds and samples, and a
reviewer who judges by the truth. Shared by the unit tests (thousands of decisions in milliseconds)."""

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from exceptions_app.accountability import estimates
from exceptions_app.accountability.breaker import DEFAULT_THRESHOLD, Cusum
from exceptions_app.accountability.estimates import BandCounts, Judgement
from exceptions_app.accountability.sampling import SamplingPlan

DEMO_POLICY = Path(__file__).resolve().parents[2] / "policies" / "billing.invoice_adjustment.yaml"


def true_error(confidence: float) -> float:
    """The chance an output is wrong: rises as confidence falls (a slightly overconfident model)."""
    return min(0.9, 0.015 + 0.9 * (1 - confidence) ** 2)


def draw_confidence(rng: random.Random) -> float:
    draw = rng.random()
    if draw < 0.8:
        return round(min(0.999, rng.betavariate(25, 1.2)), 3)
    if draw < 0.97:
        return round(rng.uniform(0.5, 0.95), 3)
    return round(rng.uniform(0.05, 0.5), 3)


@dataclass
class Run:
    judgements: list[Judgement] = field(default_factory=list)
    bands: dict[int, BandCounts] = field(default_factory=dict)
    proceeds: int = 0
    wrong_proceeds: int = 0

    @property
    def true_unattended_rate(self) -> float:
        return self.wrong_proceeds / self.proceeds


def simulate(
    seed: int,
    *,
    decisions: int = 4000,
    auto_approve: float = 0.9,
    plan: SamplingPlan | None = None,
    review_share: float = 0.7,
    rule_share: float = 0.05,
    width: float = 0.05,
) -> Run:
    rng = random.Random(seed)
    plan = plan or SamplingPlan(proceed_rate=0.05, strata=((0.95, 0.25),))
    run = Run()
    for _ in range(decisions):
        confidence = draw_confidence(rng)
        wrong = rng.random() < true_error(confidence)
        rule_held = rng.random() < rule_share
        counts = run.bands.setdefault(estimates.band_index(confidence, width), BandCounts())
        counts.decisions += 1
        if confidence < auto_approve or rule_held:
            counts.held += 1
            if rng.random() < review_share:
                run.judgements.append(Judgement(confidence, wrong, 1.0, audit=False, rule_held=rule_held))
            continue
        counts.proceeds += 1
        run.proceeds += 1
        run.wrong_proceeds += wrong
        probability = plan.probability("proceed", confidence)
        if rng.random() < probability and rng.random() < review_share:
            run.judgements.append(Judgement(confidence, wrong, probability, audit=True))
    return run


def fresh_error_at(threshold: float, seed: int, *, decisions: int = 200_000) -> float:
    """The realised error among outputs at or above ``threshold`` on fresh data."""
    rng = random.Random(seed)
    passing = wrong = 0
    for _ in range(decisions):
        confidence = draw_confidence(rng)
        if confidence >= threshold:
            passing += 1
            wrong += rng.random() < true_error(confidence)
    return wrong / passing


def demo_breaker_policy() -> tuple[SamplingPlan, Cusum, float]:
    """The demo's audit configuration (policies/billing.invoice_adjustment.yaml): its sampling plan,
    its breaker and its auto-approve threshold, as the gate reads them."""
    document = yaml.safe_load(DEMO_POLICY.read_text())
    breaker = document["breaker"]
    cusum = Cusum(breaker["audit"]["baseline"], breaker["audit"]["detect"], breaker.get("threshold", DEFAULT_THRESHOLD))
    return SamplingPlan.from_document(document["sampling"]), cusum, document["thresholds"]["auto_approve"]


def breaker_trip(
    seed: int,
    *,
    plan: SamplingPlan,
    cusum: Cusum,
    auto_approve: float,
    steady: int,
    shifted: int = 0,
    steady_rate: float = 0.02,
    shifted_rate: float = 0.20,
) -> tuple[str, int] | None:
    """Unattended decisions (proceeds) through the gate: ``steady`` of them wrong at ``steady_rate``,
    then ``shifted`` wrong at ``shifted_rate``. Each is audited with the plan's probability for its
    confidence, and every audit sample is judged at once by the truth and fed to the breaker.
    Answers where it first tripped, ``("steady", n)`` or ``("shifted", n)`` with n the number of
    proceeds of that phase up to and including the tripping one, or None if it stayed quiet."""
    rng = random.Random(seed)
    score = 0.0
    for phase, length, rate in (("steady", steady, steady_rate), ("shifted", shifted, shifted_rate)):
        for count in range(1, length + 1):
            confidence = draw_confidence(rng)
            while confidence < auto_approve:  # a held output: not unattended, not in the count
                confidence = draw_confidence(rng)
            wrong = rng.random() < rate
            if rng.random() < plan.probability("proceed", confidence):
                score = cusum.step(score, wrong)
                if cusum.tripped(score):
                    return phase, count
    return None
