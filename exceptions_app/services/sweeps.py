"""Periodic jobs over live items, run by Celery beat. Each works in bounded batches, locks rows
with SKIP LOCKED so it never waits on an operator's transaction, and audits every transition."""

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from exceptions_app.models import ACTIVE_STATUSES, AuditEvent, ExceptionItem, ItemStatus, Resolution, SlaStage
from exceptions_app.services.audit import audit_event_build
from exceptions_app.services.deliveries import deliveries_record_for_items

BATCH_SIZE = 500
SLA_NEAR_PRIORITY_BOOST = 50
SLA_BREACH_PRIORITY_BOOST = 150


def _sweep(
    candidates: QuerySet,
    change: Callable[[ExceptionItem, datetime], AuditEvent | None],
    fields: list[str],
    now,
    after: Callable[[list[ExceptionItem], datetime], object] | None = None,
) -> int:
    """Apply ``change`` to up to BATCH_SIZE candidates per transaction until none is left;
    ``after`` runs on each changed batch inside its transaction."""
    total = 0
    while True:
        with transaction.atomic():
            items = list(candidates.select_for_update(skip_locked=True, of=("self",)).order_by("id")[:BATCH_SIZE])
            if not items:
                return total
            events = [event for item in items if (event := change(item, now)) is not None]
            ExceptionItem.objects.bulk_update(items, [*fields, "updated_at"])
            AuditEvent.objects.bulk_create(events)
            if after is not None:
                after(items, now)
        total += len(items)
        if len(items) < BATCH_SIZE:
            return total


def _event(item: ExceptionItem, action: str, from_status: str, now, **payload) -> AuditEvent:
    return audit_event_build(
        action=action,
        actor=None,
        actor_label="system",
        item=item,
        from_status=from_status,
        to_status=item.status,
        payload=payload,
        at=now,
    )


def claims_expire(*, now: datetime | None = None) -> int:
    """Leases that ran out go back to the queue."""
    now = now or timezone.now()

    def change(item, now):
        holder = item.claimed_by_id
        item.status, item.claimed_by, item.claim_expires_at, item.claimed_at = ItemStatus.OPEN, None, None, None
        item.updated_at = now
        return _event(item, "lease_expired", ItemStatus.CLAIMED, now, holder_id=holder)

    candidates = ExceptionItem.objects.filter(status=ItemStatus.CLAIMED, claim_expires_at__lte=now)
    return _sweep(candidates, change, ["status", "claimed_by", "claim_expires_at", "claimed_at"], now)


def snoozes_wake(*, now: datetime | None = None) -> int:
    now = now or timezone.now()

    def change(item, now):
        item.status, item.updated_at = ItemStatus.OPEN, now
        return _event(item, "woke", ItemStatus.SNOOZED, now, snoozed_until=item.snoozed_until.isoformat())

    candidates = ExceptionItem.objects.filter(status=ItemStatus.SNOOZED, snoozed_until__lte=now)
    return _sweep(candidates, change, ["status"], now)


def sla_escalate(*, now: datetime | None = None) -> int:
    """Raise the priority of items entering the last part of their SLA window, and again, with
    one ``sla_breached`` event per item, when the due time passes."""
    now = now or timezone.now()

    def breach(item, now):
        item.priority += SLA_BREACH_PRIORITY_BOOST + (SLA_NEAR_PRIORITY_BOOST if item.sla_stage == 0 else 0)
        item.sla_stage, item.sla_breached_at, item.updated_at = SlaStage.BREACHED, now, now
        return _event(item, "sla_breached", item.status, now, due_at=item.due_at.isoformat(), priority=item.priority)

    active = Q(status__in=ACTIVE_STATUSES)
    breached = _sweep(
        ExceptionItem.objects.filter(active, due_at__lte=now, sla_stage__lt=SlaStage.BREACHED),
        breach,
        ["priority", "sla_stage", "sla_breached_at"],
        now,
    )
    # Nearing the deadline changes no state, so it is a set-based update without an audit event.
    near = ExceptionItem.objects.filter(active, sla_stage=SlaStage.ON_TIME, sla_near_at__lte=now).update(
        priority=F("priority") + SLA_NEAR_PRIORITY_BOOST, sla_stage=SlaStage.NEAR, updated_at=now
    )
    return breached + near


def items_expire(*, now: datetime | None = None) -> int:
    """Items past their deadline close with the workflow's fallback verdict (reject unless the
    policy says approve), so the waiting workflow is never left hanging."""
    now = now or timezone.now()

    def change(item, now):
        previous = item.status
        fallback = item.policy_version.document.get("fallback", "reject")
        item.status = ItemStatus.EXPIRED
        item.resolution = Resolution.FALLBACK
        item.final_output = item.proposal if fallback == "approve" else None
        item.reason_code = f"expired_{fallback}"
        item.resolved_at = now
        item.claimed_by, item.claim_expires_at, item.updated_at = None, None, now
        return _event(item, "expired", previous, now, fallback=fallback)

    candidates = ExceptionItem.objects.select_related("policy_version", "workflow").filter(
        status__in=ACTIVE_STATUSES, expires_at__isnull=False, expires_at__lte=now
    )
    fields = ["status", "resolution", "final_output", "reason_code", "resolved_at", "claimed_by", "claim_expires_at"]

    def deliver(items, now):
        deliveries_record_for_items(items=items, now=now)

    return _sweep(candidates, change, fields, now, after=deliver)
