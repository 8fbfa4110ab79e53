"""Calibration of the drift breaker: its false alarms and its delay, counted in unattended decisions.

    .venv/bin/python bench/breaker.py [--policy policies/billing.invoice_adjustment.yaml] [--runs 2000]
                                      [--rate R] [--detect D] [--threshold H]

Statistics only (no database, no server). For the policy's sampling plan and audit breaker (or the
values given instead), over seeded runs of unattended decisions (proceeds) whose true error rate is
2%, then 20%:
- false alarms: the share of runs in which the breaker trips within 20,000 proceeds at 2%, with its
  95% Wilson interval;
- delay: after 1,000 proceeds at 2%, how many proceeds at 20% it takes to trip (median, 95th
  percentile, the worst run) and the share of runs that trip within 300.
Every audit sample is taken as judged, in order. The error rate does not depend on confidence here,
so a proceed is judged with the plan's mean sampling probability over proceeds (``audited`` in the
output) whatever its band, and the gap between two judgements is geometric: this runs the same
process as tests/unit/accountability_simulation.breaker_trip, one step per judgement.
"""

import argparse
import math
import random
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exceptions_app.accountability.breaker import DEFAULT_THRESHOLD, Cusum
from exceptions_app.accountability.estimates import wilson
from exceptions_app.accountability.sampling import SamplingPlan
from tests.unit.accountability_simulation import draw_confidence

QUIET_PROCEEDS = 20_000
WARM_UP = 1_000
TARGET = 300
GIVE_UP = 5_000


def mean_audit_rate(plan: SamplingPlan, auto_approve: float, draws: int = 200_000) -> float:
    rng = random.Random(0)
    total = count = 0
    while count < draws:
        confidence = draw_confidence(rng)
        if confidence >= auto_approve:
            total += plan.probability("proceed", confidence)
            count += 1
    return total / count


def first_trip(rng: random.Random, cusum: Cusum, audited: float, phases: list[tuple[int, float]]):
    """(phase index, proceeds into that phase) at the first trip, or None."""
    log_miss = math.log1p(-audited) if audited < 1 else None
    score, wrong_step, right_step, threshold = 0.0, cusum.wrong_step, cusum.right_step, cusum.threshold
    for phase, (length, rate) in enumerate(phases):
        position = 0
        while True:
            position += 1 if log_miss is None else int(math.log(1.0 - rng.random()) / log_miss) + 1
            if position > length:
                break
            score = max(0.0, score + (wrong_step if rng.random() < rate else right_step))
            if score >= threshold:
                return phase, position
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="policies/billing.invoice_adjustment.yaml")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rate", type=float, help="audit every proceed at this rate instead of the policy's plan")
    parser.add_argument("--baseline", type=float)
    parser.add_argument("--detect", type=float)
    parser.add_argument("--threshold", type=float)
    options = parser.parse_args()
    document = yaml.safe_load(Path(options.policy).read_text())
    breaker = document.get("breaker", {}).get("audit", {"baseline": 0.02, "detect": 0.20})
    cusum = Cusum(
        options.baseline or breaker["baseline"],
        options.detect or breaker["detect"],
        options.threshold or document.get("breaker", {}).get("threshold", DEFAULT_THRESHOLD),
    )
    if options.rate:
        audited = options.rate
    else:
        plan = SamplingPlan.from_document(document["sampling"])
        audited = mean_audit_rate(plan, float(document["thresholds"]["auto_approve"]))
    alarms, delays = 0, []
    for seed in range(options.runs):
        alarms += first_trip(random.Random(seed), cusum, audited, [(QUIET_PROCEEDS, 0.02)]) is not None
        trip = first_trip(random.Random(10**6 + seed), cusum, audited, [(WARM_UP, 0.02), (GIVE_UP, 0.20)])
        delays.append(trip[1] if trip is not None and trip[0] == 1 else GIVE_UP + 1)
    delays.sort()
    low, high = wilson(alarms / options.runs, options.runs)
    print(
        f"breaker baseline {cusum.baseline:g} detect {cusum.detect:g} threshold {cusum.threshold:g}; "
        f"audited {audited:.3f} of proceeds; {options.runs} seeded runs"
    )
    print(
        f"false alarms within {QUIET_PROCEEDS:,} proceeds at 2%: {alarms} of {options.runs} "
        f"({alarms / options.runs:.2%}, 95% interval {low:.2%}-{high:.2%})"
    )
    print(
        f"proceeds to trip after 2% -> 20%: median {delays[len(delays) // 2]}, "
        f"95th percentile {delays[math.ceil(0.95 * len(delays)) - 1]}, worst {delays[-1]} "
        f"(a false alarm in the first {WARM_UP:,} or none within {GIVE_UP:,} counts as {GIVE_UP + 1}); "
        f"within {TARGET}: {sum(delay <= TARGET for delay in delays) / len(delays):.2%}"
    )


if __name__ == "__main__":
    main()
