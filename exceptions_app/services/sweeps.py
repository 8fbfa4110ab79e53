"""Periodic jobs over live items, run by Celery beat. Each works in bounded batches, locks rows
with SKIP LOCKED so it never waits on an operator's transaction, and audits every transition."""

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from exceptions_app.models import ACTIVE_STATUSES, AuditEvent, ExceptionItem, ItemStatus, Resolution, SlaStage
from exceptions_app.services.deliveries import deliveries_record_for_items
from exceptions_app.services.item_changes import CLAIM_CLEARED, item_state_change_build
from exceptions_app.tracing import spans

BATCH_SIZE = 500
SLA_NEAR_PRIORITY_BOOST = 50
SLA_BREACH_PRIORITY_BOOST = 150


# What a sweep does to one item: the audit action, the changes and the event's payload.
Change = tuple[str, dict, dict]


def _sweep(
    candidates: QuerySet,
    change: Callable[[ExceptionItem, datetime], Change],
    now,
    after: Callable[[list[ExceptionItem], datetime], object] | None = None,
) -> int:
    """Apply ``change`` to up to BATCH_SIZE candidates per transaction until none is left, saving
    each batch in one update and its events in one insert; ``after`` runs on each changed batch
    inside its transaction."""
    total = 0
    while True:
        with transaction.atomic():
            items = list(candidates.select_for_update(skip_locked=True, of=("self",)).order_by("id")[:BATCH_SIZE])
            if not items:
                return total
            events, fields = [], set()
            for item in items:
                action, changes, payload = change(item, now)
                events.append(
                    item_state_change_build(item, action=action, actor=None, changes=changes, payload=payload, now=now)
                )
                fields.update(changes)
            ExceptionItem.objects.bulk_update(items, [*sorted(fields), "updated_at"])
            AuditEvent.objects.bulk_create(events)
            if after is not None:
                after(items, now)
        total += len(items)
        if len(items) < BATCH_SIZE:
            return total


def claims_expire(*, now: datetime | None = None) -> int:
    """Leases that ran out go back to the queue."""
    now = now or timezone.now()

    def change(item, now):
        return "lease_expired", {"status": ItemStatus.OPEN, **CLAIM_CLEARED}, {"holder_id": item.claimed_by_id}

    candidates = ExceptionItem.objects.filter(status=ItemStatus.CLAIMED, claim_expires_at__lte=now)
    return _sweep(candidates, change, now)


def snoozes_wake(*, now: datetime | None = None) -> int:
    now = now or timezone.now()

    def change(item, now):
        return "woke", {"status": ItemStatus.OPEN}, {"snoozed_until": item.snoozed_until.isoformat()}

    candidates = ExceptionItem.objects.filter(status=ItemStatus.SNOOZED, snoozed_until__lte=now)
    return _sweep(candidates, change, now)


def sla_escalate(*, now: datetime | None = None) -> int:
    """Raise the priority of items entering the last part of their SLA window, and again, with
    one ``sla_breached`` event per item, when the due time passes."""
    now = now or timezone.now()

    def breach(item, now):
        boost = SLA_BREACH_PRIORITY_BOOST + (SLA_NEAR_PRIORITY_BOOST if item.sla_stage == SlaStage.ON_TIME else 0)
        priority = item.priority + boost
        changes = {"priority": priority, "sla_stage": SlaStage.BREACHED, "sla_breached_at": now}
        return "sla_breached", changes, {"due_at": item.due_at.isoformat(), "priority": priority}

    active = Q(status__in=ACTIVE_STATUSES)
    breached = _sweep(
        ExceptionItem.objects.filter(active, due_at__lte=now, sla_stage__lt=SlaStage.BREACHED), breach, now
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
        fallback = item.policy_version.document.get("fallback", "reject")
        changes = {
            "status": ItemStatus.EXPIRED,
            "resolution": Resolution.FALLBACK,
            "final_output": item.proposal if fallback == "approve" else None,
            "reason_code": f"expired_{fallback}",
            "resolved_at": now,
            **CLAIM_CLEARED,
        }
        return "expired", changes, {"fallback": fallback}

    candidates = ExceptionItem.objects.select_related("policy_version", "workflow", "queue").filter(
        status__in=ACTIVE_STATUSES, expires_at__isnull=False, expires_at__lte=now
    )

    def deliver(items, now):
        for item in items:
            spans.queue_wait_end(item, outcome="expired", now=now)
        deliveries_record_for_items(items=items, now=now)

    return _sweep(candidates, change, now, after=deliver)
