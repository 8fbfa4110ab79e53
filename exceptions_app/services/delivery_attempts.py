"""Attempting the outbox: lease N due deliveries, send them, record N results. One path; a single
delivery is a batch of one.

A drain repeats that until nothing is due. One wake-up message per burst of resolutions, not one
task per delivery: per-delivery tasks spent more CPU in Celery and in five-statement transactions
than in the deliveries themselves, so two cores kept up with only about 40 resolutions a second.
A batch's webhooks go out at once from a small thread pool, so one lease covers one timeout.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from exceptions_app.db_fast_paths import index_scan_only, update_returning
from exceptions_app.delivery.retry import AttemptResult, backoff
from exceptions_app.delivery.senders import delivery_send, workflow_for_signing
from exceptions_app.models import AuditEvent, Delivery, DeliveryAttempt, DeliveryStatus, ExceptionItem, TargetKind
from exceptions_app.services.audit import audit_event_build
from exceptions_app.services.deliveries import WAKE_KEY, deliveries_due_filter, deliveries_wake

# Deliveries leased and sent together.
DRAIN_BATCH = 16
# A drain hands over to a fresh task after this long, so no task runs into Celery's time limits.
DRAIN_MAX_SECONDS = 30.0
# An attempt holds its lease for the HTTP timeout plus this margin (recording the result).
LEASE_MARGIN_SECONDS = 5

Sent = tuple[Delivery, AttemptResult, float]  # the delivery, what happened, milliseconds it took

_senders: ThreadPoolExecutor | None = None


def _sender_pool() -> ThreadPoolExecutor:
    global _senders  # one pool per worker process, made after the fork
    if _senders is None:
        _senders = ThreadPoolExecutor(max_workers=DRAIN_BATCH, thread_name_prefix="webhook")
    return _senders


def attempt_lease_end(now: datetime) -> datetime:
    """How long an attempt holds its delivery: the HTTP timeout and a margin for recording it."""
    return now + timedelta(seconds=settings.TOLLGATE_DELIVERY_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)


def deliveries_lease(*, now: datetime, limit: int) -> list[Delivery]:
    """Take up to ``limit`` due deliveries for one attempt each, earliest first; concurrent drains
    each take different rows."""
    lease = attempt_lease_end(now)
    due = Delivery.objects.filter(deliveries_due_filter(now)).order_by("next_attempt_at")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            index_scan_only()
            return update_returning(due.select_for_update(skip_locked=True)[:limit], leased_until=lease)
        # SQLite has one writer at a time (IMMEDIATE transactions), so a read then a guarded update is safe.
        ids = list(due.values_list("pk", flat=True)[:limit])
        Delivery.objects.filter(pk__in=ids).update(leased_until=lease)
    return list(Delivery.objects.filter(pk__in=ids, leased_until=lease))


def deliveries_send(batch: list[Delivery], started: datetime) -> list[Sent]:
    """Send a leased batch: webhooks at once from the pool; Celery tasks on this thread, where the
    broker's producer lives."""
    for delivery in batch:
        delivery.workflow = workflow_for_signing(delivery.workflow_id)
    webhooks = [delivery for delivery in batch if delivery.kind == TargetKind.WEBHOOK]
    outcomes = dict(zip(webhooks, _sender_pool().map(lambda one: delivery_send(one, started), webhooks), strict=True))
    for delivery in batch:
        if delivery.kind != TargetKind.WEBHOOK:
            outcomes[delivery] = delivery_send(delivery, started)
    return [(delivery, *outcomes[delivery]) for delivery in batch]


def items_mark_delivered(deliveries: list[Delivery], now: datetime) -> None:
    """Stamp the items these deliveries carried as delivered; a webhook's 2xx is also the receiver's
    acknowledgement, a published Celery task is not."""
    for kind, acknowledged in ((TargetKind.WEBHOOK, {"acknowledged_at": now}), (TargetKind.CELERY_TASK, {})):
        item_ids = [delivery.item_id for delivery in deliveries if delivery.item_id and delivery.kind == kind]
        if item_ids:
            ExceptionItem.objects.filter(pk__in=item_ids, delivered_at__isnull=True).update(
                delivered_at=now, **acknowledged
            )


def _consequence(delivery: Delivery, result: AttemptResult, now: datetime) -> str:
    """Apply one failed attempt's consequence to the row in memory: retry later, or dead."""
    attempts = delivery.attempts + 1
    delivery.attempts, delivery.leased_until, delivery.last_error = attempts, None, result.error
    if result.outcome == "retry" and (
        attempts >= settings.TOLLGATE_DELIVERY_MAX_ATTEMPTS or now >= delivery.give_up_at
    ):
        delivery.last_error = f"retry budget spent after {attempts} attempts: {result.error}"
    elif result.outcome == "retry":
        delay = backoff(
            attempts,
            base_seconds=settings.TOLLGATE_DELIVERY_BACKOFF_SECONDS,
            max_seconds=settings.TOLLGATE_DELIVERY_BACKOFF_MAX_SECONDS,
        )
        if result.retry_after:
            cap = settings.TOLLGATE_DELIVERY_BACKOFF_MAX_SECONDS
            delay = max(delay, timedelta(seconds=min(result.retry_after, cap)))
        # The sweep wakes a drain when it is due; nothing waits in the broker meanwhile.
        delivery.next_attempt_at = now + delay
        return "retry"
    delivery.status, delivery.dead_at = DeliveryStatus.DEAD, now
    return "dead"


def attempts_record(sent: list[Sent], *, started: datetime) -> None:
    """Record a batch's attempts and their consequences in one transaction. The attempts' leases
    make the rows ours, so no row lock is needed, and the payload is never rewritten."""
    now = timezone.now()
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                delivery=delivery,
                number=delivery.attempts + 1,
                started_at=started,
                duration_ms=duration_ms,
                status_code=result.status_code,
                error=result.error,
                outcome=result.outcome,
            )
            for delivery, result, duration_ms in sent
        )
        delivered = [delivery for delivery, result, _ in sent if result.outcome == "delivered"]
        if delivered:  # the common case: one statement for the whole batch
            Delivery.objects.filter(pk__in=[delivery.pk for delivery in delivered]).update(
                status=DeliveryStatus.DELIVERED,
                delivered_at=now,
                attempts=F("attempts") + 1,
                leased_until=None,
                last_error="",
            )
            items_mark_delivered(delivered, now)
        failed = [
            (delivery, _consequence(delivery, result, now))
            for delivery, result, _ in sent
            if result.outcome != "delivered"
        ]
        if failed:
            Delivery.objects.bulk_update(
                [delivery for delivery, _ in failed],
                ["attempts", "leased_until", "last_error", "next_attempt_at", "status", "dead_at"],
            )
            _dead_letters_audit([delivery for delivery, consequence in failed if consequence == "dead"], now)


def _dead_letters_audit(dead: list[Delivery], now: datetime) -> None:
    """One ``delivery_dead`` event on each dead letter's item, in the item's current status."""
    statuses = dict(
        ExceptionItem.objects.filter(pk__in=[delivery.item_id for delivery in dead if delivery.item_id]).values_list(
            "pk", "status"
        )
    )
    AuditEvent.objects.bulk_create(
        audit_event_build(
            action="delivery_dead",
            actor=None,
            item=ExceptionItem(pk=delivery.item_id, workflow_id=delivery.workflow_id),
            from_status=statuses[delivery.item_id],
            to_status=statuses[delivery.item_id],
            payload={"delivery_id": delivery.public_id, "error": delivery.last_error},
            at=now,
        )
        for delivery in dead
        if delivery.item_id in statuses
    )


def deliveries_attempt(*, limit: int = DRAIN_BATCH) -> int:
    """Lease, send and record one batch of due deliveries; how many were attempted."""
    batch = deliveries_lease(now=timezone.now(), limit=limit)
    if batch:
        started = timezone.now()
        attempts_record(deliveries_send(batch, started), started=started)
    return len(batch)


def deliveries_drain(*, batch_size: int = DRAIN_BATCH, max_seconds: float = DRAIN_MAX_SECONDS) -> int:
    """Attempt every due delivery, a batch at a time, until none is due. Returns how many were attempted."""
    cache.delete(WAKE_KEY)  # from here on, a new delivery asks for a drain of its own
    began, attempted = time.monotonic(), 0
    while True:
        count = deliveries_attempt(limit=batch_size)
        if not count:
            return attempted
        attempted += count
        if time.monotonic() - began > max_seconds:
            deliveries_wake()  # hand the rest to a fresh task
            return attempted
