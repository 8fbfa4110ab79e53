"""Per-queue snapshots, taken by beat every TOLLGATE_SNAPSHOT_SECONDS.

Only live items are read (through the partial indexes), and flows are counted in the window
since the previous snapshot through the raised_at, resolved_at and sla_breached_at indexes."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from exceptions_app.models import ExceptionItem, ItemStatus, Queue, QueueSnapshot

# Upper bounds, in seconds, of the waiting-age histogram; the last is +Inf.
AGE_BUCKETS = [60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, float("inf")]

_AGES_SQL = """
SELECT queue_id, count(*), max(age),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY age),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY age),
       {buckets}
FROM (SELECT queue_id, extract(epoch FROM (%s - queued_at)) AS age
      FROM exceptions_app_exceptionitem WHERE status = 'open') AS waiting
GROUP BY queue_id
"""


def _bucket_sql() -> str:
    bounded = [f"count(*) FILTER (WHERE age <= {bound})" for bound in AGE_BUCKETS[:-1]]
    return ", ".join([*bounded, "count(*)"])


def _cumulative_to_counts(cumulative: list[int]) -> list[int]:
    return [cumulative[0]] + [cumulative[index] - cumulative[index - 1] for index in range(1, len(cumulative))]


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def waiting_ages(now: datetime) -> dict[int, dict]:
    """Per queue: oldest, p50 and p95 age of open items, and their age histogram."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_AGES_SQL.format(buckets=_bucket_sql()), [now])
            rows = cursor.fetchall()
        return {
            row[0]: {"oldest": row[2], "p50": row[3], "p95": row[4], "buckets": _cumulative_to_counts(list(row[5:]))}
            for row in rows
        }
    ages: dict[int, list[float]] = defaultdict(list)
    for queue_id, queued_at in ExceptionItem.objects.filter(status=ItemStatus.OPEN).values_list(
        "queue_id", "queued_at"
    ):
        ages[queue_id].append((now - queued_at).total_seconds())
    result = {}
    for queue_id, values in ages.items():
        counts = [0] * len(AGE_BUCKETS)
        for age in values:
            counts[next(index for index, bound in enumerate(AGE_BUCKETS) if age <= bound)] += 1
        result[queue_id] = {
            "oldest": max(values),
            "p50": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "buckets": counts,
        }
    return result


def _counts_by_queue(**window) -> dict[int, int]:
    rows = ExceptionItem.objects.filter(**window).values("queue_id").annotate(total=Count("id")).order_by()
    return {row["queue_id"]: row["total"] for row in rows}


@dataclass(frozen=True)
class LiveState:
    """Live items by queue and status, and claimed items by queue and claimant (user id)."""

    counts: dict[int, dict[str, int]]
    claims: dict[int, dict[int, int]]


def live_state() -> LiveState:
    """One pass over the live items (an index-only scan of item_live_by_queue, which includes
    claimed_by): the counts by status and the claims by claimant come from the same rows."""
    rows = (
        ExceptionItem.objects.filter(status__in=[ItemStatus.OPEN, ItemStatus.CLAIMED, ItemStatus.SNOOZED])
        .values_list("queue_id", "status", "claimed_by_id")
        .annotate(total=Count("id"))
        .order_by()
    )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {"open": 0, "claimed": 0, "snoozed": 0})
    claims: dict[int, dict[int, int]] = defaultdict(dict)
    for queue_id, status, claimant, total in rows:
        counts[queue_id][status] += total
        if status == ItemStatus.CLAIMED and claimant is not None:
            claims[queue_id][claimant] = total
    return LiveState(counts=counts, claims=claims)


def live_counts() -> dict[int, dict[str, int]]:
    return live_state().counts


@dataclass
class Handling:
    """One queue's resolutions in a tick: all of them, those with a handling time (the auto-resolved
    and bulk-resolved have none) and its sums, and who worked the queue."""

    resolved: int = 0
    count: int = 0
    seconds_sum: float = 0.0
    seconds_squares: float = 0.0
    operators: set[int] = field(default_factory=set)


def handling_in_window(since: datetime, now: datetime, claims: dict[int, dict[int, int]]) -> dict[int, Handling]:
    """Per queue: handling times (first claim to resolution) of the items resolved in (since, now],
    through the resolved_at index, and the people who resolved them or hold a claim now."""
    handling: dict[int, Handling] = defaultdict(Handling)
    rows = ExceptionItem.objects.filter(resolved_at__gt=since, resolved_at__lte=now).values_list(
        "queue_id", "resolved_by_id", "first_claimed_at", "resolved_at"
    )
    for queue_id, resolver, first_claimed_at, resolved_at in rows:
        entry = handling[queue_id]
        entry.resolved += 1
        if resolver is not None:
            entry.operators.add(resolver)
        if first_claimed_at is not None and resolver is not None:
            seconds = max(0.0, (resolved_at - first_claimed_at).total_seconds())
            entry.count += 1
            entry.seconds_sum += seconds
            entry.seconds_squares += seconds * seconds
    for queue_id, claimants in claims.items():
        handling[queue_id].operators.update(claimants)
    return handling


def snapshots_take(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    previous = QueueSnapshot.objects.order_by("-taken_at").values_list("taken_at", flat=True).first()
    since = previous or now - timedelta(seconds=settings.TOLLGATE_SNAPSHOT_SECONDS)
    state = live_state()
    counts = state.counts
    handling = handling_in_window(since, now, state.claims)
    ages = waiting_ages(now)
    arrivals = _counts_by_queue(raised_at__gt=since, raised_at__lte=now)
    breaches = _counts_by_queue(sla_breached_at__gt=since, sla_breached_at__lte=now)
    snapshots = []
    for queue_id in Queue.objects.values_list("id", flat=True):
        live, age = counts.get(queue_id, {"open": 0, "claimed": 0, "snoozed": 0}), ages.get(queue_id, {})
        handled = handling.get(queue_id, Handling())
        snapshots.append(
            QueueSnapshot(
                queue_id=queue_id,
                taken_at=now,
                depth=live["open"],
                claimed=live["claimed"],
                snoozed=live["snoozed"],
                oldest_age_seconds=age.get("oldest"),
                p50_age_seconds=age.get("p50"),
                p95_age_seconds=age.get("p95"),
                age_buckets=age.get("buckets", [0] * len(AGE_BUCKETS)),
                arrivals=arrivals.get(queue_id, 0),
                completions=handled.resolved,
                sla_breaches=breaches.get(queue_id, 0),
                handled=handled.count,
                handling_seconds_sum=handled.seconds_sum,
                handling_seconds_squares=handled.seconds_squares,
                operator_ids=sorted(handled.operators),
            )
        )
    with transaction.atomic():
        QueueSnapshot.objects.bulk_create(snapshots)
    return len(snapshots)


def snapshots_purge(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.TOLLGATE_SNAPSHOT_RETENTION_DAYS)
    return QueueSnapshot.objects.filter(taken_at__lt=cutoff).delete()[0]
