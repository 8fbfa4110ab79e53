"""Incremental tallies: each run reads the rows added to a source table since its cursor (ids
only grow) and adds them to small hourly tables. Cheap at any table size, monotonic, and the
same for every process that reads them."""

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from exceptions_app.models import (
    DecisionHourly,
    Delivery,
    DeliveryAttempt,
    DeliveryHourly,
    GateDecision,
    HistogramTotal,
    ItemKind,
    ResolutionHourly,
    TallyCursor,
)

# Upper bounds in seconds; the last bucket is +Inf.
LATENCY_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, float("inf")]
BANDS = [(0.5, "0.0-0.5"), (0.7, "0.5-0.7"), (0.8, "0.7-0.8"), (0.9, "0.8-0.9"), (1.01, "0.9-1.0")]
BATCH = 20_000
MAX_BATCHES = 20


def confidence_band(confidence: float | None) -> str:
    if confidence is None:
        return "none"
    return next(label for upper, label in BANDS if confidence < upper)


def bucket_index(seconds: float) -> int:
    return next(index for index, upper in enumerate(LATENCY_BUCKETS) if seconds <= upper)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _empty_buckets() -> list[int]:
    return [0] * len(LATENCY_BUCKETS)


def _advance(name: str, read_batch, apply_batch) -> int:
    """Read and apply batches after the cursor, under a lock so overlapping runs never double count."""
    total = 0
    for _ in range(MAX_BATCHES):
        with transaction.atomic():
            cursor, _ = TallyCursor.objects.select_for_update().get_or_create(name=name)
            rows = read_batch(cursor.last_id)
            if not rows:
                return total
            apply_batch(rows)
            cursor.last_id = rows[-1]["id"]
            cursor.save(update_fields=["last_id", "updated_at"])
        total += len(rows)
        if len(rows) < BATCH:
            return total
    return total


def _upsert(model, key_fields: list[str], changes: dict, merge) -> None:
    """Add ``changes`` (key tuple -> delta) into the rows with those keys, creating missing ones."""
    if not changes:
        return
    rows = model.objects.select_for_update().filter(hour__in={key[0] for key in changes})
    existing = {tuple(getattr(row, field) for field in key_fields): row for row in rows}
    created, updated = [], []
    for key, delta in changes.items():
        row = existing.get(key)
        if row is None:
            row = model(**dict(zip(key_fields, key, strict=True)))
            created.append(row)
        else:
            updated.append(row)
        merge(row, delta)
    model.objects.bulk_create(created)
    if updated:
        value_fields = [field.name for field in model._meta.concrete_fields if field.attname not in ("id", *key_fields)]
        model.objects.bulk_update(updated, value_fields)


def decisions_tally() -> int:
    def read(after):
        return list(
            GateDecision.objects.filter(id__gt=after)
            .order_by("id")
            .values("id", "workflow_id", "verdict", "confidence", "created_at")[:BATCH]
        )

    def apply(rows):
        changes: dict = defaultdict(int)
        for row in rows:
            changes[
                (_hour(row["created_at"]), row["workflow_id"], row["verdict"], confidence_band(row["confidence"]))
            ] += 1

        def merge(target, delta):
            target.count += delta

        _upsert(DecisionHourly, ["hour", "workflow_id", "verdict", "band"], changes, merge)

    return _advance("decisions", read, apply)


def resolutions_tally() -> int:
    """Every resolution (and fallback expiry) writes exactly one item delivery row, so the delivery
    ids are the cursor over resolutions. Audit judgements are not resolutions of held outputs (an
    ``audit.failed`` row carries one): the override rate counts holds only."""

    def read(after):
        rows = list(
            Delivery.objects.filter(id__gt=after, item__isnull=False)
            .exclude(item__kind=ItemKind.AUDIT)
            .order_by("id")
            .values(
                "id",
                "workflow_id",
                "attempts",
                "next_attempt_at",
                "item__resolution",
                "item__confidence",
                "item__queued_at",
                "item__first_claimed_at",
                "item__resolved_at",
                "item__resolved_by__username",
            )[:BATCH]
        )
        # A console decision's row is held, never attempted, while it can still be undone
        # (services/undo.py): count nothing from it on, so an undone decision is never counted.
        now = timezone.now()
        for index, row in enumerate(rows):
            if row["attempts"] == 0 and row["next_attempt_at"] > now:
                return rows[:index]
        return rows

    def apply(rows):
        changes: dict = {}
        for row in rows:
            resolved = row["item__resolved_at"]
            if resolved is None:
                continue
            key = (
                _hour(resolved),
                row["workflow_id"],
                row["item__resolved_by__username"] or "system",
                row["item__resolution"] or "none",
                confidence_band(row["item__confidence"]),
            )
            entry = changes.setdefault(
                key,
                {
                    "count": 0,
                    "waiting": _empty_buckets(),
                    "handling": _empty_buckets(),
                    "waiting_sum": 0.0,
                    "handling_sum": 0.0,
                },
            )
            entry["count"] += 1
            claimed = row["item__first_claimed_at"] or resolved
            waiting = max(0.0, (claimed - row["item__queued_at"]).total_seconds())
            handling = max(0.0, (resolved - claimed).total_seconds())
            entry["waiting"][bucket_index(waiting)] += 1
            entry["handling"][bucket_index(handling)] += 1
            entry["waiting_sum"] += waiting
            entry["handling_sum"] += handling

        def merge(target, delta):
            target.count += delta["count"]
            target.waiting_buckets = _add(target.waiting_buckets, delta["waiting"])
            target.handling_buckets = _add(target.handling_buckets, delta["handling"])
            target.waiting_seconds_sum += delta["waiting_sum"]
            target.handling_seconds_sum += delta["handling_sum"]

        _upsert(ResolutionHourly, ["hour", "workflow_id", "resolver", "outcome", "band"], changes, merge)
        waiting, handling = _empty_buckets(), _empty_buckets()
        for entry in changes.values():
            waiting, handling = _add(waiting, entry["waiting"]), _add(handling, entry["handling"])
        _add_to_total("waiting", waiting, sum(entry["waiting_sum"] for entry in changes.values()))
        _add_to_total("handling", handling, sum(entry["handling_sum"] for entry in changes.values()))

    return _advance("resolutions", read, apply)


def deliveries_tally() -> int:
    def read(after):
        return list(
            DeliveryAttempt.objects.filter(id__gt=after)
            .order_by("id")
            .values(
                "id", "outcome", "started_at", "duration_ms", "delivery__item__resolved_at", "delivery__created_at"
            )[:BATCH]
        )

    def apply(rows):
        changes: dict = {}
        for row in rows:
            entry = changes.setdefault(
                (_hour(row["started_at"]), row["outcome"]), {"count": 0, "latency": _empty_buckets(), "sum": 0.0}
            )
            entry["count"] += 1
            if row["outcome"] == "delivered":
                origin = row["delivery__item__resolved_at"] or row["delivery__created_at"]
                latency = max(0.0, (row["started_at"] - origin).total_seconds() + row["duration_ms"] / 1000)
                entry["latency"][bucket_index(latency)] += 1
                entry["sum"] += latency

        def merge(target, delta):
            target.count += delta["count"]
            target.latency_buckets = _add(target.latency_buckets, delta["latency"])
            target.latency_seconds_sum += delta["sum"]

        _upsert(DeliveryHourly, ["hour", "outcome"], changes, merge)
        latency = _empty_buckets()
        for entry in changes.values():
            latency = _add(latency, entry["latency"])
        _add_to_total("delivery", latency, sum(entry["sum"] for entry in changes.values()))

    return _advance("deliveries", read, apply)


def _add_to_total(stage: str, buckets: list[int], seconds: float) -> None:
    total, _ = HistogramTotal.objects.select_for_update().get_or_create(stage=stage)
    total.buckets = _add(total.buckets, buckets)
    total.seconds_sum += seconds
    total.save(update_fields=["buckets", "seconds_sum"])


def _add(left: list[int], right: list[int]) -> list[int]:
    left = left or _empty_buckets()
    return [a + b for a, b in zip(left, right, strict=True)]


def tallies_advance() -> dict[str, int]:
    return {"decisions": decisions_tally(), "resolutions": resolutions_tally(), "deliveries": deliveries_tally()}
