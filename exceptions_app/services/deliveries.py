"""The outbox: a delivery row commits with the change it carries (record), says what it carries
(payloads), and can be put back after it died (redeliver). What is due, and the wake-up that asks a
worker to drain it, live here too; attempting deliveries is services/delivery_attempts.

The database, not the broker, is the record: the wake-up is only a nudge, and the beat sweep
nudges again whenever something is due, so a lost message or a killed worker delays a delivery
but never loses it.
"""

import functools
import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exceptions_app.db_fast_paths import unsaved_instance
from exceptions_app.interrupts import item_human_response
from exceptions_app.models import (
    AuditEvent,
    Delivery,
    DeliveryStatus,
    ExceptionItem,
    GateDecision,
    TargetKind,
    Vote,
    VotePurpose,
    Workflow,
)
from exceptions_app.rules import iso_timestamp
from exceptions_app.services.audit import audit_event_build
from exceptions_app.services.bulk_copy import bulk_copy
from exceptions_app.services.consensus import vote_present

logger = logging.getLogger(__name__)

# Set while a drain is wanted and has not started: a burst of resolutions publishes one drain.
WAKE_KEY = "deliveries:drain-wanted"


def _new_public_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def approvers_of(item: ExceptionItem) -> list[dict]:
    """Who approved (or rejected) an item its policy gave to several people, in order; for an item
    one person decides, that person. Only a policy with ``approvals`` costs a query."""
    if "approvals" in item.policy_version.document:
        votes = Vote.objects.filter(item=item, purpose=VotePurpose.APPROVAL).select_related("voter", "team")
        found = [vote_present(vote) for vote in votes.order_by("seat")]
        if found:
            return found
    if item.resolved_by_id and item.resolution in ("approve", "modify", "reject"):
        by, at = item.resolved_by.get_username(), iso_timestamp(item.resolved_at)
        return [{"by": by, "at": at, "vote": item.resolution, "team": None, "reason_code": "", "note": ""}]
    return []


def payload_trace_context(traceparent: str) -> dict:
    """The agent's trace, for its resumed step to join (docs/integrations/opentelemetry.md)."""
    return {"traceparent": traceparent} if traceparent else {}


def resolution_payload(item: ExceptionItem, *, public_id: str) -> dict:
    """What a resolution carries to the agent (webhook body, Celery task argument, feed entry). An item
    with a LangGraph interrupt also carries its ``human_response``: the graph resumes with it."""
    payload = {
        "type": "exception.resolved",
        "delivery_id": public_id,
        "item_id": item.pk,
        "decision_id": item.decision_id,
        "workflow": item.workflow.name,
        "correlation_id": item.correlation_id,
        "status": item.status,
        "verdict": item.resolution,
        "final_output": item.final_output,
        "reason_code": item.reason_code,
        "note": item.resolution_note,
        "resolver": item.resolved_by.get_username() if item.resolved_by_id else "system",
        "approvers": approvers_of(item),
        "timestamps": {
            "raised_at": iso_timestamp(item.raised_at),
            "queued_at": iso_timestamp(item.queued_at),
            "first_claimed_at": iso_timestamp(item.first_claimed_at),
            "resolved_at": iso_timestamp(item.resolved_at),
        },
        **payload_trace_context(item.traceparent),
    }
    if item.interrupt is not None:
        payload["human_response"] = item_human_response(item)
    return payload


def decision_payload(decision: GateDecision, *, public_id: str) -> dict:
    return {
        "type": "decision.made",
        "delivery_id": public_id,
        "decision_id": decision.pk,
        "item_id": None,
        "workflow": decision.workflow.name,
        "correlation_id": decision.correlation_id,
        "verdict": decision.verdict,
        "final_output": decision.output if decision.verdict == "proceed" else None,
        "reasons": decision.reasons,
        "timestamps": {"decided_at": iso_timestamp(decision.created_at)},
        **payload_trace_context(decision.traceparent),
    }


def _target(callback_url: str, document: dict) -> tuple[str, str, str]:
    if callback_url:
        return TargetKind.WEBHOOK, callback_url, ""
    if document.get("callback_task"):
        return TargetKind.CELERY_TASK, document["callback_task"], document.get("callback_queue", "celery")
    return TargetKind.POLL, "", ""


def deliveries_due_filter(now: datetime) -> Q:
    """Pending deliveries whose time has come and that no attempt holds. The one definition of
    "due": the drain leases by it and the sweep wakes the drain by it."""
    free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) & free & ~Q(kind=TargetKind.POLL)


def deliveries_held_filter(now: datetime) -> Q:
    """Rows that have not left yet and may not before their time: a console decision's delivery
    during its undo window (never attempted, not due). Agents are not shown what they carry
    (services/undo.py), and undo may still withdraw them."""
    return Q(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at__gt=now)


def deliveries_wake() -> None:
    """Ask for a drain, unless one is already wanted and has not started. Call after commit.

    Deduplicated with an atomic cache ``add`` (Redis ``SET NX``). A drain deletes the flag before it
    leases anything, so a delivery committed before the flag was seen set is leased by the drain
    that flag stands for, or by a later one. The flag expires, so a lost drain is asked for again."""
    from exceptions_app.tasks.delivery import deliveries_drain

    try:
        wanted = cache.add(WAKE_KEY, 1, timeout=settings.TOLLGATE_DELIVERY_REQUEUE_SECONDS)
    except Exception:  # the cache is down: the sweep will find the rows once it is back
        logger.warning("could not ask for a delivery drain; the sweep will retry", exc_info=True)
        return
    if not wanted:
        return
    try:
        deliveries_drain.delay()
    except Exception:
        # The broker is down. The flag must not outlive the failed publish, or it would keep the sweep
        # from asking again until it expires (TOLLGATE_DELIVERY_REQUEUE_SECONDS after the broker returns).
        logger.warning("could not publish a delivery drain; the sweep will retry", exc_info=True)
        try:
            cache.delete(WAKE_KEY)
        except Exception:
            logger.warning("could not clear the delivery drain flag; it expires by itself", exc_info=True)


def deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """The ids of due deliveries, earliest first. A read: leasing them is the drain's."""
    due = Delivery.objects.filter(deliveries_due_filter(now or timezone.now())).order_by("next_attempt_at")
    return list(due.values_list("pk", flat=True)[:limit])


def deliveries_sweep(*, now: datetime | None = None) -> bool:
    """Wake a drain if anything is due: retries whose backoff ended, and rows whose drain was lost
    (killed worker, restarted broker). Returns whether something was due."""
    if not deliveries_due(now=now, limit=1):
        return False
    deliveries_wake()
    return True


def _new_delivery(
    *, workflow, kind, target, queue, payload, public_id, now, item=None, decision=None, hold: timedelta = timedelta()
) -> Delivery:
    # A held row (a console decision's undo window) is not due until the hold ends; the sweep
    # wakes a drain for it then.
    return unsaved_instance(
        Delivery,
        public_id=public_id,
        workflow=workflow,
        item=item,
        decision=decision,
        kind=kind,
        target=target,
        target_queue=queue,
        payload=payload,
        next_attempt_at=now + hold,
        give_up_at=now + timedelta(seconds=settings.TOLLGATE_DELIVERY_BUDGET_SECONDS),
        created_at=now,
    )


def _routed_delivery(
    *,
    workflow,
    document: dict,
    callback_url: str,
    build_payload,
    now: datetime,
    item=None,
    hold: timedelta = timedelta(),
) -> Delivery:
    """An unsaved outbox row sent where the workflow's resolutions go (``_target``), with a new
    public id; ``build_payload(public_id=...)`` makes its body."""
    kind, target, queue = _target(callback_url, document)
    public_id = _new_public_id()
    return _new_delivery(
        workflow=workflow,
        kind=kind,
        target=target,
        queue=queue,
        item=item,
        now=now,
        public_id=public_id,
        payload=build_payload(public_id=public_id),
        hold=hold,
    )


def _wake_after_commit(deliveries: list[Delivery]) -> None:
    """Publishing is only a wake-up call: the row is the record, and the sweep catches a lost message."""
    if any(delivery.kind != TargetKind.POLL for delivery in deliveries):
        transaction.on_commit(deliveries_wake)


def deliveries_record_for_items(
    *, items: list[ExceptionItem], now: datetime, hold: timedelta = timedelta()
) -> list[Delivery]:
    """Outbox rows for resolved or expired items; call inside the transaction that resolved them.
    ``hold`` keeps them unsent that long (a console decision's undo window)."""
    deliveries = [
        _routed_delivery(
            workflow=item.workflow,
            document=item.policy_version.document,
            callback_url=item.callback_url,
            build_payload=functools.partial(resolution_payload, item),
            now=now,
            item=item,
            hold=hold,
        )
        for item in items
    ]
    Delivery.objects.bulk_create(deliveries)
    if not hold:
        _wake_after_commit(deliveries)
    return deliveries


def decision_delivered(decision: GateDecision) -> bool:
    """Whether a gate verdict gets an outbox row: a proceed or reject that asked for a callback (a
    hold is delivered when a person resolves its item)."""
    return bool(decision.callback_url) and decision.verdict != "hold"


def deliveries_record_for_decisions(*, decisions: list[GateDecision], now: datetime) -> list[Delivery]:
    """Outbox rows for gate verdicts (proceed, reject) that an agent asked to hear about by callback."""
    deliveries = []
    for decision in decisions:
        if not decision_delivered(decision):
            continue
        public_id = _new_public_id()
        deliveries.append(
            _new_delivery(
                workflow=decision.workflow,
                kind=TargetKind.WEBHOOK,
                target=decision.callback_url,
                queue="",
                decision=decision,
                now=now,
                public_id=public_id,
                payload=decision_payload(decision, public_id=public_id),
            )
        )
    bulk_copy(Delivery, deliveries)  # a batch's outbox rows in one COPY, like its decisions
    _wake_after_commit(deliveries)
    return deliveries


def delivery_record_event(
    *, workflow: Workflow, document: dict, callback_url: str, build_payload, now: datetime, item=None
) -> Delivery:
    """One outbox row for an event other than a resolution (``audit.failed``, ``workflow.tripped``),
    sent where the workflow's resolutions go; call inside the transaction that caused it.
    ``build_payload(public_id=...)`` makes its body."""
    delivery = _routed_delivery(
        workflow=workflow, document=document, callback_url=callback_url, build_payload=build_payload, now=now, item=item
    )
    delivery.save(force_insert=True)
    _wake_after_commit([delivery])
    return delivery


def deliveries_redeliver(*, delivery_ids: list[str], actor) -> int:
    """Put dead letters back in the outbox with a fresh budget; each audited on its item."""
    now = timezone.now()
    with transaction.atomic():
        dead = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("item", "workflow")
            .filter(public_id__in=delivery_ids, status=DeliveryStatus.DEAD)
        )
        for delivery in dead:
            delivery.status, delivery.attempts, delivery.dead_at = DeliveryStatus.PENDING, 0, None
            delivery.next_attempt_at, delivery.leased_until = now, None
            delivery.give_up_at = now + timedelta(seconds=settings.TOLLGATE_DELIVERY_BUDGET_SECONDS)
        Delivery.objects.bulk_update(
            dead, ["status", "attempts", "dead_at", "next_attempt_at", "leased_until", "give_up_at"]
        )
        AuditEvent.objects.bulk_create(
            audit_event_build(
                action="redelivery_requested",
                actor=actor,
                item=delivery.item,
                workflow=delivery.workflow,
                payload={"delivery_id": delivery.public_id},
                at=now,
            )
            for delivery in dead
        )
        _wake_after_commit(dead)
    return len(dead)
