"""Figures for supervisors: the dashboard, /api/v1/stats/* and CSV exports all read these."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, Max, Sum
from django.utils import timezone

from exceptions_app.models import (
    DecisionHourly,
    DeliveryHourly,
    ExceptionItem,
    ItemStatus,
    Queue,
    QueueSnapshot,
    ResolutionHourly,
)
from exceptions_app.services.snapshots import live_counts
from exceptions_app.services.tallies import LATENCY_BUCKETS

OVERRIDDEN = ("modify", "reject")
HUMAN_OUTCOMES = ("approve", "modify", "reject")


def bucket_percentile(counts: list[int], fraction: float, bounds: list[float] = LATENCY_BUCKETS) -> float | None:
    """A percentile from histogram counts, interpolating inside the bucket (as histogram_quantile)."""
    total = sum(counts)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = bounds[index - 1] if index else 0.0
            upper = bounds[index]
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return bounds[-2]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def latest_snapshots(queues) -> dict[int, QueueSnapshot]:
    taken = dict(
        QueueSnapshot.objects.filter(queue__in=queues).values_list("queue_id").annotate(Max("taken_at")).order_by()
    )
    snapshots = QueueSnapshot.objects.filter(queue__in=queues, taken_at__in=set(taken.values()))
    return {snapshot.queue_id: snapshot for snapshot in snapshots if taken[snapshot.queue_id] == snapshot.taken_at}


def queue_table(*, queues, now: datetime | None = None) -> list[dict]:
    """Live depth and claims; waiting ages as of the latest snapshot (at most one tick old); the
    last hour's arrivals and completions and 24 hours of SLA breaches. Riskiest queue first."""
    now = now or timezone.now()
    queues = list(queues)
    counts = live_counts()
    latest = latest_snapshots(queues)
    recent = QueueSnapshot.objects.filter(queue__in=queues)
    hour = {
        row["queue_id"]: row
        for row in recent.filter(taken_at__gt=now - timedelta(hours=1))
        .values("queue_id")
        .annotate(arrivals=Sum("arrivals"), completions=Sum("completions"))
        .order_by()
    }
    breaches = dict(
        recent.filter(taken_at__gt=now - timedelta(hours=24))
        .values_list("queue_id")
        .annotate(Sum("sla_breaches"))
        .order_by()
    )
    claimers = defaultdict(list)
    for row in (
        ExceptionItem.objects.filter(queue__in=queues, status=ItemStatus.CLAIMED)
        .values("queue_id", "claimed_by__username")
        .annotate(total=Count("id"))
        .order_by("claimed_by__username")
    ):
        claimers[row["queue_id"]].append(f"{row['claimed_by__username']} ({row['total']})")
    table = []
    for queue in queues:
        live = counts.get(queue.pk, {"open": 0, "claimed": 0, "snoozed": 0})
        snapshot = latest.get(queue.pk)
        oldest = snapshot.oldest_age_seconds if snapshot else None
        table.append(
            {
                "queue": queue.name,
                "depth": live["open"],
                "claimed": live["claimed"],
                "snoozed": live["snoozed"],
                "oldest_age_seconds": oldest,
                "p50_age_seconds": snapshot.p50_age_seconds if snapshot else None,
                "p95_age_seconds": snapshot.p95_age_seconds if snapshot else None,
                "ages_as_of": snapshot.taken_at.isoformat() if snapshot else None,
                "sla_seconds": queue.sla_seconds,
                "sla_breaches_24h": breaches.get(queue.pk) or 0,
                "arrivals_last_hour": hour.get(queue.pk, {}).get("arrivals") or 0,
                "completions_last_hour": hour.get(queue.pk, {}).get("completions") or 0,
                "claimed_by": ", ".join(claimers.get(queue.pk, [])),
                "risk": round(oldest / queue.sla_seconds, 3) if oldest is not None else 0.0,
            }
        )
    return sorted(table, key=lambda row: (-row["risk"], -row["depth"], row["queue"]))


def workflow_rates(*, since: datetime) -> list[dict]:
    """Review rate (held / all gate decisions) and override rate ((modified + rejected) / resolved
    by a person), per workflow and confidence band; summed by the database."""
    decisions = defaultdict(lambda: defaultdict(int))
    for row in (
        DecisionHourly.objects.filter(hour__gte=since)
        .values("workflow__name", "verdict", "band")
        .annotate(total=Sum("count"))
        .order_by()
    ):
        for key in ((row["workflow__name"], "all"), (row["workflow__name"], row["band"])):
            decisions[key]["total"] += row["total"]
            decisions[key][row["verdict"]] += row["total"]
    resolutions = defaultdict(lambda: defaultdict(int))
    for row in (
        ResolutionHourly.objects.filter(hour__gte=since, outcome__in=HUMAN_OUTCOMES)
        .values("workflow__name", "outcome", "band")
        .annotate(total=Sum("count"))
        .order_by()
    ):
        for key in ((row["workflow__name"], "all"), (row["workflow__name"], row["band"])):
            resolutions[key]["resolved"] += row["total"]
            resolutions[key][row["outcome"]] += row["total"]
    rows = []
    for workflow, band in sorted(set(decisions) | set(resolutions), key=lambda key: (key[0], key[1] != "all", key[1])):
        made, done = decisions[(workflow, band)], resolutions[(workflow, band)]
        rows.append(
            {
                "workflow": workflow,
                "band": band,
                "decisions": made["total"],
                "held": made["hold"],
                "review_rate": _ratio(made["hold"], made["total"]),
                "resolved": done["resolved"],
                "overridden": done["modify"] + done["reject"],
                "override_rate": _ratio(done["modify"] + done["reject"], done["resolved"]),
            }
        )
    return rows


def _summed(rows, index: int) -> list[int]:
    total = [0] * len(LATENCY_BUCKETS)
    for row in rows:
        for position, value in enumerate(row[index] or []):
            total[position] += value
    return total


def latency_split(*, since: datetime) -> list[dict]:
    """Decision latency split into waiting (queued to first claim), handling (claim to resolution)
    and delivery (resolution to delivered), as percentiles from the tallied histograms."""
    resolutions = list(
        ResolutionHourly.objects.filter(hour__gte=since).values_list(
            "waiting_buckets", "handling_buckets", "waiting_seconds_sum", "handling_seconds_sum"
        )
    )
    deliveries = list(
        DeliveryHourly.objects.filter(hour__gte=since, outcome="delivered").values_list(
            "latency_buckets", "latency_seconds_sum"
        )
    )
    stages = [
        ("waiting", _summed(resolutions, 0), sum(row[2] for row in resolutions)),
        ("handling", _summed(resolutions, 1), sum(row[3] for row in resolutions)),
        ("delivery", _summed(deliveries, 0), sum(row[1] for row in deliveries)),
    ]
    return [
        {
            "stage": name,
            "count": sum(counts),
            "mean_seconds": round(total / sum(counts), 3) if sum(counts) else None,
            "p50_seconds": bucket_percentile(counts, 0.5),
            "p95_seconds": bucket_percentile(counts, 0.95),
        }
        for name, counts, total in stages
    ]


def operator_table(*, since: datetime) -> list[dict]:
    handling: dict[str, list[int]] = defaultdict(lambda: [0] * len(LATENCY_BUCKETS))
    resolved: dict[str, int] = defaultdict(int)
    for resolver, count, buckets in ResolutionHourly.objects.filter(
        hour__gte=since, outcome__in=HUMAN_OUTCOMES
    ).values_list("resolver", "count", "handling_buckets"):
        resolved[resolver] += count
        for position, value in enumerate(buckets or []):
            handling[resolver][position] += value
    claims = dict(
        ExceptionItem.objects.filter(status=ItemStatus.CLAIMED)
        .values_list("claimed_by__username")
        .annotate(Count("id"))
        .order_by()
    )
    return [
        {
            "operator": name,
            "resolved": resolved.get(name, 0),
            "median_handling_seconds": bucket_percentile(handling[name], 0.5) if name in resolved else None,
            "current_claims": claims.get(name, 0),
        }
        for name in sorted(set(resolved) | set(claims))
    ]


def queue_history(*, queue: Queue, since: datetime) -> list[dict]:
    return [
        {
            "taken_at": snapshot.taken_at,
            "depth": snapshot.depth,
            "p95_age_seconds": snapshot.p95_age_seconds,
            "arrivals": snapshot.arrivals,
            "completions": snapshot.completions,
        }
        for snapshot in QueueSnapshot.objects.filter(queue=queue, taken_at__gte=since).order_by("taken_at")
    ]
