"""The outbox. A delivery row commits with the change it carries; workers attempt it under a
database lease; retry times live in ``next_attempt_at``; a beat sweep re-enqueues whatever is
due and not in flight, so a lost task or a killed worker delays a delivery but never loses it."""

import json
import time
import uuid
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from exceptions_app.delivery.retry import AttemptResult, backoff, classify
from exceptions_app.delivery.signing import signature_headers
from exceptions_app.delivery.url_guard import callback_url_check
from exceptions_app.errors import InvalidInput
from exceptions_app.models import (
    AuditEvent,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ExceptionItem,
    GateDecision,
    TargetKind,
    Workflow,
)
from exceptions_app.services.audit import audit_event_build, audit_record
from exceptions_app.services.local_cache import LocalCache

# An attempt holds its lease for the HTTP timeout plus this margin (recording the result).
LEASE_MARGIN_SECONDS = 5


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _new_public_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def resolution_payload(item: ExceptionItem, *, public_id: str) -> dict:
    return {
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
        "timestamps": {
            "raised_at": _iso(item.raised_at),
            "queued_at": _iso(item.queued_at),
            "first_claimed_at": _iso(item.first_claimed_at),
            "resolved_at": _iso(item.resolved_at),
        },
    }


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
        "timestamps": {"decided_at": _iso(decision.created_at)},
    }


def _target(callback_url: str, document: dict) -> tuple[str, str, str]:
    if callback_url:
        return TargetKind.WEBHOOK, callback_url, ""
    if document.get("callback_task"):
        return TargetKind.CELERY_TASK, document["callback_task"], document.get("callback_queue", "celery")
    return TargetKind.POLL, "", ""


def _new_delivery(*, workflow, kind, target, queue, payload, public_id, now, item=None, decision=None) -> Delivery:
    return Delivery(
        public_id=public_id,
        workflow=workflow,
        item=item,
        decision=decision,
        kind=kind,
        target=target,
        target_queue=queue,
        payload=payload,
        next_attempt_at=now,
        enqueued_at=now if kind != TargetKind.POLL else None,
        give_up_at=now + timedelta(seconds=settings.TOLLGATE_DELIVERY_BUDGET_SECONDS),
        created_at=now,
    )


def _wake_after_commit(deliveries: list[Delivery]) -> None:
    """Publishing is only a wake-up call: the row is the record, and the sweep catches a lost message."""
    if any(delivery.kind != TargetKind.POLL for delivery in deliveries):
        from exceptions_app.services.delivery_drain import deliveries_wake

        transaction.on_commit(deliveries_wake)


def deliveries_record_for_items(*, items: list[ExceptionItem], now: datetime) -> list[Delivery]:
    """Outbox rows for resolved or expired items; call inside the transaction that resolved them."""
    deliveries = []
    for item in items:
        kind, target, queue = _target(item.callback_url, item.policy_version.document)
        public_id = _new_public_id()
        deliveries.append(
            _new_delivery(
                workflow=item.workflow,
                kind=kind,
                target=target,
                queue=queue,
                item=item,
                now=now,
                public_id=public_id,
                payload=resolution_payload(item, public_id=public_id),
            )
        )
    Delivery.objects.bulk_create(deliveries)
    _wake_after_commit(deliveries)
    return deliveries


def deliveries_record_for_decisions(*, decisions: list[GateDecision], now: datetime) -> list[Delivery]:
    """Outbox rows for gate verdicts (proceed, reject) that an agent asked to hear about by callback."""
    deliveries = []
    for decision in decisions:
        if not decision.callback_url or decision.verdict == "hold":
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
    Delivery.objects.bulk_create(deliveries)
    _wake_after_commit(deliveries)
    return deliveries


_LEASE_SQL = """
UPDATE exceptions_app_delivery SET leased_until = %(lease)s
WHERE id = %(pk)s AND status = 'pending' AND next_attempt_at <= %(now)s AND kind <> 'poll'
  AND (leased_until IS NULL OR leased_until < %(now)s)
RETURNING *
"""


def attempt_lease_end(now: datetime) -> datetime:
    """How long an attempt holds its delivery: the HTTP timeout and a margin for recording it."""
    return now + timedelta(seconds=settings.TOLLGATE_DELIVERY_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)


def due_and_free(now: datetime) -> Q:
    """Pending deliveries whose time has come and that no attempt holds (the SQL leases say the same)."""
    free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) & free & ~Q(kind=TargetKind.POLL)


def _lease(delivery_pk: int, now: datetime) -> Delivery | None:
    """Take the delivery for one attempt if it is due and nobody holds it: one statement that both
    leases and reads the row (on PostgreSQL; elsewhere an update, then a read)."""
    lease = attempt_lease_end(now)
    if connection.vendor == "postgresql":
        return next(iter(Delivery.objects.raw(_LEASE_SQL, {"lease": lease, "pk": delivery_pk, "now": now})), None)
    if Delivery.objects.filter(due_and_free(now), pk=delivery_pk).update(leased_until=lease) != 1:
        return None
    return Delivery.objects.get(pk=delivery_pk)


_workflows_for_signing = LocalCache("signing-workflows")


def workflow_for_signing(workflow_id: int) -> Workflow:
    """The workflow's signing secrets, kept briefly per process (a rotation here clears them)."""
    return _workflows_for_signing.get_or_load(
        workflow_id,
        lambda: Workflow.objects.only(
            "id", "name", "webhook_secret", "previous_webhook_secret", "previous_secret_retires_at"
        ).get(pk=workflow_id),
    )


_http_client: httpx.Client | None = None


def _client() -> httpx.Client:
    global _http_client  # one pooled client per worker process, created after the fork
    if _http_client is None:
        _http_client = httpx.Client(follow_redirects=False, headers={"user-agent": "Tollgate-Webhooks/1"})
    return _http_client


def _secrets(workflow: Workflow, now: datetime) -> list[str]:
    secrets = [workflow.webhook_secret]
    if (
        workflow.previous_webhook_secret
        and workflow.previous_secret_retires_at
        and (workflow.previous_secret_retires_at > now)
    ):
        secrets.append(workflow.previous_webhook_secret)
    return secrets


def send_webhook(delivery: Delivery, now: datetime) -> AttemptResult:
    try:
        callback_url_check(delivery.target, field="target")
    except InvalidInput as error:
        return AttemptResult("terminal", error=error.message)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    headers = {
        "content-type": "application/json",
        **signature_headers(message_id=delivery.public_id, body=body, secrets=_secrets(delivery.workflow, now)),
    }
    try:
        with _client().stream(
            "POST",
            delivery.target,
            content=body.encode(),
            headers=headers,
            timeout=settings.TOLLGATE_DELIVERY_TIMEOUT_SECONDS,
        ) as response:
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received >= settings.TOLLGATE_DELIVERY_RESPONSE_CAP_BYTES:
                    break  # the body is only read to free the connection; never trust its size
            return classify(response.status_code, response.headers.get("retry-after"))
    except httpx.HTTPError as error:
        return AttemptResult("retry", error=f"{type(error).__name__}: {error}"[:500])


def send_task(delivery: Delivery) -> AttemptResult:
    from exceptions_app.celery import app

    try:
        app.send_task(
            delivery.target, args=[delivery.payload], queue=delivery.target_queue or None, task_id=delivery.public_id
        )
    except Exception as error:  # any broker error is transient from our side
        return AttemptResult("retry", error=f"{type(error).__name__}: {error}"[:500])
    return AttemptResult("delivered")


def delivery_attempt(*, delivery_pk: int) -> str:
    """One attempt of one delivery, if it is due and nobody else holds it. Returns the outcome."""
    started = timezone.now()
    delivery = _lease(delivery_pk, started)
    if delivery is None:
        return "skipped"
    delivery.workflow = workflow_for_signing(delivery.workflow_id)
    result, duration_ms = attempt_send(delivery, started)
    attempt_record(delivery, result, started=started, duration_ms=duration_ms)
    return result.outcome


def attempt_send(delivery: Delivery, started: datetime) -> tuple[AttemptResult, float]:
    """Send one leased delivery to its target; the result and how long it took in milliseconds."""
    clock = time.perf_counter()
    result = send_webhook(delivery, started) if delivery.kind == TargetKind.WEBHOOK else send_task(delivery)
    return result, (time.perf_counter() - clock) * 1000


def items_mark_delivered(deliveries: list[Delivery], now: datetime) -> None:
    """Stamp the items these deliveries carried as delivered; a webhook's 2xx is also the receiver's
    acknowledgement, a published Celery task is not."""
    for kind, acknowledged in ((TargetKind.WEBHOOK, {"acknowledged_at": now}), (TargetKind.CELERY_TASK, {})):
        item_ids = [delivery.item_id for delivery in deliveries if delivery.item_id and delivery.kind == kind]
        if item_ids:
            ExceptionItem.objects.filter(pk__in=item_ids, delivered_at__isnull=True).update(
                delivered_at=now, **acknowledged
            )


def attempt_record(delivery: Delivery, result: AttemptResult, *, started: datetime, duration_ms: float) -> None:
    """Record the attempt and its consequence. The attempt's lease makes the row ours, so no row
    lock is needed, and only the changed columns are written (never the payload)."""
    now = timezone.now()
    delivery.attempts += 1
    delivery.leased_until = None
    delivery.last_error = result.error
    outcome = result.outcome
    if outcome == "retry" and (
        delivery.attempts >= settings.TOLLGATE_DELIVERY_MAX_ATTEMPTS or now >= delivery.give_up_at
    ):
        outcome = "terminal"
        delivery.last_error = f"retry budget spent after {delivery.attempts} attempts: {result.error}"
    changed = ["attempts", "leased_until", "last_error"]
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started,
            duration_ms=duration_ms,
            status_code=result.status_code,
            error=result.error,
            outcome=result.outcome,
        )
        if outcome == "delivered":
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
            changed += ["status", "delivered_at"]
            items_mark_delivered([delivery], now)
        elif outcome == "retry":
            delay = backoff(
                delivery.attempts,
                base_seconds=settings.TOLLGATE_DELIVERY_BACKOFF_SECONDS,
                max_seconds=settings.TOLLGATE_DELIVERY_BACKOFF_MAX_SECONDS,
            )
            if result.retry_after:
                cap = settings.TOLLGATE_DELIVERY_BACKOFF_MAX_SECONDS
                delay = max(delay, timedelta(seconds=min(result.retry_after, cap)))
            # The sweep publishes it again when it is due; nothing waits in the broker meanwhile.
            delivery.next_attempt_at, delivery.enqueued_at = now + delay, None
            changed += ["next_attempt_at", "enqueued_at"]
        else:
            delivery.status, delivery.dead_at = DeliveryStatus.DEAD, now
            changed += ["status", "dead_at"]
            if delivery.item_id:
                item = ExceptionItem.objects.get(pk=delivery.item_id)
                audit_record(
                    action="delivery_dead",
                    actor=None,
                    actor_label="system",
                    item=item,
                    from_status=item.status,
                    to_status=item.status,
                    payload={"delivery_id": delivery.public_id, "error": delivery.last_error},
                    at=now,
                )
        delivery.save(update_fields=changed)


def deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Claim for publishing the pending deliveries whose time has come, that no attempt holds and
    that were not published recently (lost tasks, killed workers, a restarted broker, retries)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.TOLLGATE_DELIVERY_REQUEUE_SECONDS)
    unqueued = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    with transaction.atomic():
        due = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(due_and_free(now) & unqueued)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        Delivery.objects.filter(pk__in=due).update(enqueued_at=now)
    return due


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
            delivery.next_attempt_at, delivery.leased_until, delivery.enqueued_at = now, None, now
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
