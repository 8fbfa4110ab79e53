"""The accountability figures of one workflow over a window, read from the database and computed by
the pure ``estimates`` module: the API's answer and the dashboard page's curves both come from here."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, FloatField, Min, Value
from django.db.models.functions import Floor

from exceptions_app.accountability import estimates
from exceptions_app.accountability.estimates import BandCounts, Judgement
from exceptions_app.models import BreakerState, ExceptionItem, GateDecision, ItemKind, ItemStatus, Workflow
from exceptions_app.rules import iso_timestamp
from exceptions_app.services.judgements import JUDGED, WRONG

SECONDS_PER_DAY = 86_400


@dataclass
class AccountabilityReport:
    answer: dict  # exactly the API's shape
    reliability: list[dict]
    tradeoff: list[dict]
    recommended: dict | None
    target: float | None
    auto_approve: float
    holds_per_day: float | None
    breaker: BreakerState | None
    breaker_config: dict | None


def _band_of(confidence: float, width: float) -> int:
    return estimates.band_index(confidence, width)


def _decision_bands(workflow: Workflow, since: datetime, until: datetime, width: float) -> dict[int, BandCounts]:
    """Decisions per band and verdict, counted by the database (the window may hold millions)."""
    rows = (
        GateDecision.objects.filter(workflow=workflow, created_at__gte=since, created_at__lt=until)
        .annotate(band=Floor(F("confidence") / Value(width, output_field=FloatField()) + Value(1e-9)))
        .values("band", "verdict")
        .annotate(total=Count("id"))
        .order_by()
    )
    last = estimates.band_count(width) - 1
    bands: dict[int, BandCounts] = {}
    for row in rows:
        counts = bands.setdefault(min(max(int(row["band"]), 0), last), BandCounts())
        counts.decisions += row["total"]
        counts.held += row["total"] if row["verdict"] == "hold" else 0
        counts.proceeds += row["total"] if row["verdict"] == "proceed" else 0
        counts.rejects += row["total"] if row["verdict"] == "reject" else 0
    return bands


def _judgement(kind: str, confidence: float, resolution: str, probability: float | None, reasons: list) -> Judgement:
    if kind == ItemKind.AUDIT:
        proceed = any(reason.get("verdict") == "proceed" for reason in reasons)
        return Judgement(confidence, resolution in WRONG, probability or 1.0, audit=proceed)
    rule_held = any(reason.get("code") not in ("low_confidence", "breaker_tripped") for reason in reasons)
    return Judgement(confidence, resolution in WRONG, 1.0, audit=False, rule_held=rule_held)


def accountability_report(*, workflow: Workflow, since: datetime, until: datetime) -> AccountabilityReport:
    document = workflow.current_policy.document
    sampling = document.get("sampling") or {}
    width = float(sampling.get("band_width", estimates.DEFAULT_BAND_WIDTH))
    target = (document.get("targets") or {}).get("max_unattended_error")
    auto_approve = float(document["thresholds"]["auto_approve"])

    bands = _decision_bands(workflow, since, until, width)
    in_window = ExceptionItem.objects.filter(workflow=workflow, raised_at__gte=since, raised_at__lt=until)
    sampled_by_band: dict[int, int] = {}
    for confidence in in_window.filter(kind=ItemKind.AUDIT).values_list("confidence", flat=True):
        index = _band_of(confidence, width)
        sampled_by_band[index] = sampled_by_band.get(index, 0) + 1
    rows = [
        row
        for row in in_window.filter(
            kind__in=[ItemKind.HOLD, ItemKind.AUDIT], status=ItemStatus.RESOLVED, resolution__in=JUDGED
        ).values_list("kind", "confidence", "resolution", "sampling_probability", "reasons")
        if row[1] is not None
    ]
    judgements = [_judgement(*row) for row in rows]
    audits = [judgement for judgement in judgements if judgement.audit]
    holds = [judgement for row, judgement in zip(rows, judgements, strict=True) if row[0] == ItemKind.HOLD]

    decisions = sum(counts.decisions for counts in bands.values())
    held = sum(counts.held for counts in bands.values())
    proceeds = sum(counts.proceeds for counts in bands.values())
    unattended = estimates.unattended_error(audits)
    first = GateDecision.objects.filter(workflow=workflow, created_at__gte=since, created_at__lt=until).aggregate(
        first=Min("created_at")
    )["first"]
    days = max((until - (first or since)).total_seconds(), 3600) / SECONDS_PER_DAY
    tradeoff = estimates.tradeoff_curve(
        judgements=judgements, bands=bands, width=width, current_auto_approve=auto_approve, window_days=days
    )
    recommended = estimates.recommended_threshold(tradeoff, target)
    rates = estimates.band_rates(judgements, width)
    judged_by_band: dict[int, int] = {}
    for judgement in judgements:
        index = _band_of(judgement.confidence, width)
        judged_by_band[index] = judged_by_band.get(index, 0) + 1
    band_rows = []
    for index in sorted(set(bands) | set(sampled_by_band) | set(rates)):
        lower, upper = estimates.band_bounds(index, width)
        counts, rate = bands.get(index, BandCounts()), rates.get(index, estimates.UNKNOWN)
        band_rows.append(
            {
                "lower": lower,
                "upper": upper,
                "decisions": counts.decisions,
                "held": counts.held,
                "sampled": sampled_by_band.get(index, 0),
                "judged": judged_by_band.get(index, 0),
                "error_rate": rate.as_dict()["estimate"],
                "low": rate.as_dict()["low"],
                "high": rate.as_dict()["high"],
            }
        )
    answer = {
        "workflow": workflow.name,
        "window": {"since": iso_timestamp(since), "until": iso_timestamp(until)},
        "proceeds": proceeds,
        "sampled": sum(sampled_by_band.values()),
        "judged": len(audits),
        "unattended_error": unattended.as_dict(),
        "expected_wrong_unattended": estimates.expected_wrong(proceeds, unattended).as_dict(),
        "override_rate": round(sum(j.wrong for j in holds) / len(holds), 6) if holds else None,
        "review_rate": round(held / decisions, 6) if decisions else None,
        "bands": band_rows,
        "recommended_auto_approve": recommended["threshold"] if recommended else None,
        "tripped": workflow.tripped_at is not None,
    }
    return AccountabilityReport(
        answer=answer,
        reliability=estimates.reliability_curve(judgements, width),
        tradeoff=tradeoff,
        recommended=recommended,
        target=target,
        auto_approve=auto_approve,
        holds_per_day=round(held / days, 1),
        breaker=BreakerState.objects.filter(workflow=workflow).first(),
        breaker_config=document.get("breaker"),
    )
