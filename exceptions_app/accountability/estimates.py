"""Estimates from sampled human judgements: error rates with 95% intervals, the reliability curve,
the threshold trade-off curve and the recommended ``auto_approve``. Pure Python, no Django.

The interval (documented in docs/accountability.md): a judged item ``i`` weighs ``w_i = 1/p_i``,
the inverse of the probability it was sampled with (1 for a hold: every hold is reviewed). The
rate is the Hajek estimate ``sum(w_i * wrong_i) / sum(w_i)``; its 95% interval is Wilson's score
interval at Kish's effective sample size ``n_eff = (sum w_i)^2 / sum(w_i^2)``, so unequal
weights widen it as much as they cost, and no judgement outside [0, 1] or a zero-width interval
at 0 or 1 can come out. Items sampled but not yet judged are assumed missing at random.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
DEFAULT_BAND_WIDTH = 0.05


@dataclass(frozen=True)
class Judgement:
    """One human verdict on one AI output: ``wrong`` when modified or rejected."""

    confidence: float
    wrong: bool
    probability: float = 1.0  # the chance this output was put before a person (1 for a hold)
    audit: bool = True  # sampled from the unattended verdicts, else a hold
    rule_held: bool = False  # a hold some rule would keep holding whatever the threshold


@dataclass(frozen=True)
class RateEstimate:
    estimate: float | None
    low: float | None
    high: float | None
    judged: int = 0
    effective_n: float = 0.0

    def as_dict(self) -> dict:
        return {"estimate": _round(self.estimate), "low": _round(self.low), "high": _round(self.high)}


UNKNOWN = RateEstimate(None, None, None)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def wilson(rate: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``rate`` observed over ``n`` (may be fractional) trials."""
    if n <= 0:
        return 0.0, 1.0
    z2 = z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0 or 1 the bound is exact; rounding would otherwise leave a speck above 0 (or below 1).
    low = 0.0 if rate <= 0 else max(0.0, centre - half)
    high = 1.0 if rate >= 1 else min(1.0, centre + half)
    return low, high


def weighted_rate(observations: Iterable[tuple[bool, float]]) -> RateEstimate:
    """Hajek estimate of a rate from ``(wrong, weight)`` pairs, with Wilson at Kish's effective n."""
    total = squares = wrong_total = 0.0
    count = 0
    for wrong, weight in observations:
        total += weight
        squares += weight * weight
        wrong_total += weight if wrong else 0.0
        count += 1
    if not count or total <= 0:
        return UNKNOWN
    rate = wrong_total / total
    effective = total * total / squares
    low, high = wilson(rate, effective)
    return RateEstimate(rate, low, high, judged=count, effective_n=effective)


def unattended_error(judgements: Iterable[Judgement]) -> RateEstimate:
    """The error rate among outputs that proceeded unattended, from judged audit samples."""
    return weighted_rate((j.wrong, 1.0 / j.probability) for j in judgements if j.audit and j.probability > 0)


def expected_wrong(proceeds: int, rate: RateEstimate) -> RateEstimate:
    """Wrong outputs that went through: proceeds times the rate, bound for bound."""
    if rate.estimate is None:
        return UNKNOWN
    return RateEstimate(proceeds * rate.estimate, proceeds * rate.low, proceeds * rate.high, rate.judged)


def band_index(confidence: float, width: float = DEFAULT_BAND_WIDTH) -> int:
    last = math.ceil(1 / width - 1e-9) - 1
    return min(max(math.floor(confidence / width + 1e-9), 0), last)


def band_bounds(index: int, width: float = DEFAULT_BAND_WIDTH) -> tuple[float, float]:
    return round(index * width, 6), round(min(1.0, (index + 1) * width), 6)


def band_count(width: float = DEFAULT_BAND_WIDTH) -> int:
    return band_index(1.0, width) + 1


@dataclass
class BandCounts:
    """Decisions of one confidence band in the window, as the gate recorded them."""

    decisions: int = 0
    held: int = 0
    proceeds: int = 0
    rejects: int = 0  # below auto_reject: neither reviewed nor let through, whatever the candidate


def band_rates(judgements: Sequence[Judgement], width: float) -> dict[int, RateEstimate]:
    """Each band's rate of wrong outputs among everything people judged in it (holds and audits)."""
    grouped: dict[int, list[tuple[bool, float]]] = {}
    for judgement in judgements:
        if judgement.probability > 0:
            grouped.setdefault(band_index(judgement.confidence, width), []).append(
                (judgement.wrong, 1.0 / judgement.probability)
            )
    return {index: weighted_rate(observations) for index, observations in grouped.items()}


def reliability_curve(judgements: Sequence[Judgement], width: float) -> list[dict]:
    """Human agreement (1 - weighted error rate) against stated confidence, per band with judgements:
    a calibrated model's points lie on the diagonal."""
    rates = band_rates(judgements, width)
    mean_confidence: dict[int, list[float]] = {}
    for judgement in judgements:
        mean_confidence.setdefault(band_index(judgement.confidence, width), []).append(judgement.confidence)
    curve = []
    for index in sorted(rates):
        rate = rates[index]
        lower, upper = band_bounds(index, width)
        values = mean_confidence[index]
        curve.append(
            {
                "lower": lower,
                "upper": upper,
                "confidence": round(sum(values) / len(values), 4),
                "agreement": _round(1 - rate.estimate),
                "low": _round(1 - rate.high),
                "high": _round(1 - rate.low),
                "judged": rate.judged,
            }
        )
    return curve


def _would_proceed(judgement: Judgement, threshold: float) -> bool:
    return judgement.confidence >= threshold and not judgement.rule_held


def tradeoff_curve(
    *,
    judgements: Sequence[Judgement],
    bands: dict[int, BandCounts],
    width: float,
    current_auto_approve: float,
    window_days: float,
) -> list[dict]:
    """For every candidate ``auto_approve`` (each band's lower edge, from the lowest band with
    decisions): the review rate it implies and
    the error rate among what it would let through, with its interval.

    The outputs a candidate ``t`` lets through are those at or above ``t`` that no rule holds. Their
    error rate is post-stratified by band: each band's Hajek rate weighted by its share of those
    outputs, and the interval is Wilson at the Kish effective n of the resulting item weights. A
    band with decisions but no judgement leaves the candidate unknown (never recommended). Bands
    below today's ``auto_approve`` were held, so their would-be proceeds are the decisions less the
    share a rule holds, estimated from the bands at or above it (where only rules hold)."""
    total = sum(counts.decisions for counts in bands.values())
    if not total:
        return []  # no decisions: nothing to trade off, and nothing to recommend
    above = [counts for index, counts in bands.items() if band_bounds(index, width)[0] >= current_auto_approve]
    above_decisions = sum(counts.decisions for counts in above)
    rule_share = sum(counts.held for counts in above) / above_decisions if above_decisions else 0.0
    per_band: dict[int, list[Judgement]] = {}
    for judgement in judgements:
        per_band.setdefault(band_index(judgement.confidence, width), []).append(judgement)
    curve = []
    # Below the lowest band with decisions every candidate lets the same outputs through: start there.
    for index in range(min(bands), band_count(width)):
        threshold = band_bounds(index, width)[0]
        passing, held = {}, 0.0
        for band, counts in bands.items():
            lower, gated = band_bounds(band, width)[0], counts.decisions - counts.rejects
            if lower < threshold:
                held += gated
                continue
            rule_held = counts.held if lower >= current_auto_approve else gated * rule_share
            held += rule_held
            if gated - rule_held > 0:
                passing[band] = gated - rule_held
        estimate = _stratified(passing, per_band, threshold)
        curve.append(
            {
                "threshold": threshold,
                "review_rate": _round(held / total) if total else None,
                "holds_per_day": round(held / window_days, 1) if window_days > 0 else None,
                "error": estimate.as_dict(),
            }
        )
    return curve


def _stratified(passing: dict[int, float], per_band: dict[int, list[Judgement]], threshold: float) -> RateEstimate:
    return stratified_rate(
        passing,
        {
            band: [(j.wrong, 1.0 / j.probability) for j in judged if _would_proceed(j, threshold) and j.probability > 0]
            for band, judged in per_band.items()
        },
    )


def stratified_rate(passing: dict[int, float], observations: dict[int, list[tuple[bool, float]]]) -> RateEstimate:
    """The error rate of a population counted per band (``passing``), post-stratified: each band's
    Hajek rate from its ``(wrong, weight)`` observations, weighted by the band's share; Wilson at the
    Kish effective n of the resulting weights. Unknown if a band of the population has no observation."""
    if not passing:
        return RateEstimate(0.0, 0.0, 0.0)
    population = sum(passing.values())
    weighted: list[tuple[bool, float]] = []
    for band, count in passing.items():
        judged = observations.get(band)
        if not judged:
            return UNKNOWN
        band_weight = sum(weight for _, weight in judged)
        weighted += [(wrong, (count / population) * weight / band_weight) for wrong, weight in judged]
    return weighted_rate(weighted)


def recommended_threshold(curve: Sequence[dict], target: float | None) -> dict | None:
    """The lowest candidate whose upper 95% bound meets ``target``: the least review that keeps the
    unattended error within what the team accepts, with what it costs. None if no candidate does."""
    if target is None:
        return None
    for point in curve:
        high = point["error"]["high"]
        if high is not None and high <= target:
            return point
    return None
