"""The capacity model's measured inputs, per queue, read from the queue snapshots only (never the
items table, so the cost does not grow with the number of items):

- arrival rate: arrivals per hour over the recent window, or the hour-of-week profile (this hour
  of the week in earlier weeks) once at least PROFILE_MIN_WEEKS weeks of it are recorded;
- handling: mean and spread of first-claim-to-resolution times in the window, pooled over all
  queues for a queue with none of its own;
- operators: the people who resolved an item of the queue or held a claim in it in the window;
- backlog and its age distribution: the latest snapshot.
"""

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from exceptions_app.capacity.forecast import QueueInputs
from exceptions_app.models import Queue, QueueSnapshot
from exceptions_app.services.snapshots import AGE_BUCKETS

PROFILE_WEEKS = 4  # earlier weeks the hour-of-week profile looks at (snapshots are kept 30 days)
PROFILE_MIN_WEEKS = 2  # weeks with this hour recorded before the profile replaces the window
PROFILE_MIN_COVERAGE = 0.5  # share of the hour a week's snapshots must cover to count
WEEK_SECONDS = 7 * 86400
DISPERSION_MIN_TICKS = 10  # snapshot ticks needed before arrival burstiness is trusted
VARIATION_MIN_HANDLED = 10  # handling times needed before their spread is trusted

_FIELDS = [
    "queue_id",
    "taken_at",
    "arrivals",
    "depth",
    "oldest_age_seconds",
    "age_buckets",
    "handled",
    "handling_seconds_sum",
    "handling_seconds_squares",
    "operator_ids",
]


@dataclass
class _Handling:
    count: int = 0
    seconds_sum: float = 0.0
    seconds_squares: float = 0.0

    def add(self, count: int, seconds_sum: float, seconds_squares: float) -> None:
        self.count += count
        self.seconds_sum += seconds_sum
        self.seconds_squares += seconds_squares

    def mean(self) -> float | None:
        return self.seconds_sum / self.count if self.count else None

    def variation(self) -> float | None:
        mean = self.mean()
        if self.count < VARIATION_MIN_HANDLED or not mean:
            return None
        variance = max(0.0, self.seconds_squares / self.count - mean * mean)
        return math.sqrt(variance) / mean


def _window_rate(ticks: list[dict]) -> float:
    """Arrivals per hour. Each tick counts the arrivals since the tick before it, so the first
    tick's count belongs to time before the window's first moment and is left out."""
    if not ticks:
        return 0.0
    if len(ticks) == 1:
        return ticks[0]["arrivals"] * 3600.0 / settings.TOLLGATE_SNAPSHOT_SECONDS
    seconds = (ticks[-1]["taken_at"] - ticks[0]["taken_at"]).total_seconds()
    return sum(tick["arrivals"] for tick in ticks[1:]) * 3600.0 / seconds if seconds > 0 else 0.0


def _dispersion(ticks: list[dict]) -> float | None:
    counts = [tick["arrivals"] for tick in ticks[1:]]
    if len(counts) < DISPERSION_MIN_TICKS:
        return None
    mean = statistics.fmean(counts)
    return statistics.pvariance(counts) / mean if mean > 0 else None


def _profile_rates(queue_ids: list[int], now: datetime) -> dict[int, float]:
    """Per queue with enough history: the mean arrivals per hour in this hour of the week over the
    earlier weeks that recorded it. Reads only those hours of the snapshots (time index)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    ranges = Q()
    for weeks in range(1, PROFILE_WEEKS + 1):
        start = hour - timedelta(weeks=weeks)
        ranges |= Q(taken_at__gte=start, taken_at__lt=start + timedelta(hours=1))
    by_week: dict[tuple[int, int], list[int]] = defaultdict(list)
    for queue_id, taken_at, arrivals in QueueSnapshot.objects.filter(ranges, queue_id__in=queue_ids).values_list(
        "queue_id", "taken_at", "arrivals"
    ):
        # (hour - taken_at) lies in (w weeks - 1 h, w weeks] for week w.
        by_week[(queue_id, round((hour - taken_at).total_seconds() / WEEK_SECONDS))].append(arrivals)
    covered_ticks = PROFILE_MIN_COVERAGE * 3600.0 / settings.TOLLGATE_SNAPSHOT_SECONDS
    rates: dict[int, list[float]] = defaultdict(list)
    for (queue_id, _), counts in by_week.items():
        if len(counts) >= covered_ticks:
            rates[queue_id].append(sum(counts) * 3600.0 / (len(counts) * settings.TOLLGATE_SNAPSHOT_SECONDS))
    return {
        queue_id: statistics.fmean(values) for queue_id, values in rates.items() if len(values) >= PROFILE_MIN_WEEKS
    }


def capacity_inputs(*, now: datetime, window_seconds: int | None = None) -> list[QueueInputs]:
    """The measured inputs of every queue, by name."""
    window = timedelta(seconds=window_seconds or settings.TOLLGATE_CAPACITY_WINDOW_SECONDS)
    queues = list(Queue.objects.order_by("name").values_list("id", "name", "sla_seconds"))
    ticks: dict[int, list[dict]] = defaultdict(list)
    rows = QueueSnapshot.objects.filter(taken_at__gt=now - window, taken_at__lte=now).order_by("taken_at")
    for row in rows.values(*_FIELDS):
        ticks[row["queue_id"]].append(row)
    profile = _profile_rates([queue_id for queue_id, _, _ in queues], now)
    pooled = _Handling()
    handling: dict[int, _Handling] = defaultdict(_Handling)
    for queue_id, queue_ticks in ticks.items():
        for tick in queue_ticks:
            handling[queue_id].add(tick["handled"], tick["handling_seconds_sum"], tick["handling_seconds_squares"])
            pooled.add(tick["handled"], tick["handling_seconds_sum"], tick["handling_seconds_squares"])
    measured = []
    for queue_id, name, sla_seconds in queues:
        queue_ticks = ticks.get(queue_id, [])
        latest = queue_ticks[-1] if queue_ticks else None
        own = handling.get(queue_id, _Handling())
        source = own if own.count else pooled
        operators = set()
        for tick in queue_ticks:
            operators.update(tick["operator_ids"] or [])
        counts = (latest["age_buckets"] if latest else None) or [0] * len(AGE_BUCKETS)
        measured.append(
            QueueInputs(
                queue=name,
                sla_seconds=float(sla_seconds),
                arrival_rate_per_hour=profile.get(queue_id, _window_rate(queue_ticks)),
                arrival_source="hour_of_week_profile" if queue_id in profile else "recent_window",
                arrival_dispersion=_dispersion(queue_ticks),
                operators=len(operators),
                backlog=latest["depth"] if latest else 0,
                oldest_age_seconds=latest["oldest_age_seconds"] if latest else None,
                age_buckets=list(zip(AGE_BUCKETS, counts, strict=False)),
                mean_handling_seconds=source.mean(),
                handling_variation=source.variation(),
                service_source="measured" if own.count else "pooled_all_queues",
            )
        )
    return measured
