"""What a person's judgement means beyond its item: a wrong audit sample becomes an ``audit.failed``
event for the workflow, every judgement feeds the drift breaker, a tripped breaker holds the
workflow's outputs until a supervisor resets it, and a supervisor publishes a recommended
threshold. Each write is audited."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from exceptions_app.accountability.breaker import DEFAULT_THRESHOLD, Cusum
from exceptions_app.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from exceptions_app.models import (
    BreakerState,
    ExceptionItem,
    ItemKind,
    PolicySource,
    PolicyVersion,
    Principal,
    Resolution,
    Role,
    Workflow,
)
from exceptions_app.policy.document import PolicyInvalid
from exceptions_app.rules import iso_timestamp
from exceptions_app.services.audit import audit_record
from exceptions_app.services.deliveries import (
    deliveries_record_for_items,
    delivery_record_event,
    payload_trace_context,
)
from exceptions_app.services.policies import policy_publish

WRONG = (Resolution.MODIFY, Resolution.REJECT)
JUDGED = (Resolution.APPROVE, Resolution.MODIFY, Resolution.REJECT)


def sampled_verdict(item: ExceptionItem) -> str | None:
    """The unattended verdict an audit item copies (``proceed`` or ``reject``)."""
    return next((reason.get("verdict") for reason in item.reasons if reason.get("code") == "audit_sample"), None)


def audit_failed_payload(item: ExceptionItem, *, public_id: str) -> dict:
    return {
        "type": "audit.failed",
        "delivery_id": public_id,
        "item_id": item.pk,
        "decision_id": item.decision_id,
        "workflow": item.workflow.name,
        "policy_version": item.policy_version.version,
        "correlation_id": item.correlation_id,
        "verdict": sampled_verdict(item),
        "proposal": item.proposal,
        "judgement": item.resolution,
        "final_output": item.final_output,
        "reason_code": item.reason_code,
        "note": item.resolution_note,
        "judged_by": item.resolved_by.get_username() if item.resolved_by_id else None,
        "sampling_probability": item.sampling_probability,
        "timestamps": {"decided_at": iso_timestamp(item.raised_at), "judged_at": iso_timestamp(item.resolved_at)},
        **payload_trace_context(item.traceparent),
    }


def _current_document(workflow: Workflow) -> dict:
    return PolicyVersion.objects.values_list("document", flat=True).get(pk=workflow.current_policy_id)


def judgement_record(*, item: ExceptionItem, now: datetime, hold: timedelta = timedelta()) -> None:
    """The consequences of resolving ``item``; call inside the transaction that resolved it. A hold's
    resolution goes back to the waiting workflow (after ``hold``, a console decision's undo window);
    an audit sample's verdict already ran, so only a wrong proceed is delivered, as
    ``audit.failed``, for the workflow to compensate."""
    if item.kind != ItemKind.AUDIT:
        deliveries_record_for_items(items=[item], now=now, hold=hold)
    elif item.resolution in WRONG and sampled_verdict(item) == "proceed":
        delivery_record_event(
            workflow=item.workflow,
            document=item.policy_version.document,
            callback_url=item.callback_url,
            build_payload=lambda public_id: audit_failed_payload(item, public_id=public_id),
            now=now,
            item=item,
        )
    if item.resolution in JUDGED:
        _breaker_observe(item, now)


def _stream(item: ExceptionItem) -> str | None:
    if item.kind == ItemKind.AUDIT:
        return "audit" if sampled_verdict(item) == "proceed" else None
    return "override" if item.kind == ItemKind.HOLD else None


def _breaker_observe(item: ExceptionItem, now: datetime) -> None:
    stream = _stream(item)
    if stream is None:
        return
    config = _current_document(item.workflow).get("breaker") or {}
    if stream not in config:
        return
    cusum = Cusum(config[stream]["baseline"], config[stream]["detect"], config.get("threshold", DEFAULT_THRESHOLD))
    BreakerState.objects.get_or_create(workflow=item.workflow)
    state = BreakerState.objects.select_for_update().get(workflow=item.workflow)
    before, wrong = getattr(state, f"{stream}_score"), item.resolution in WRONG
    score = cusum.step(before, wrong)
    state.recent = [*_undoable(state.recent, now), _observation(item, stream, cusum, wrong, before, now)]
    setattr(state, f"{stream}_score", score)
    setattr(state, f"{stream}_judged", getattr(state, f"{stream}_judged") + 1)
    if state.tripped_at is None and cusum.tripped(score):
        state.tripped_at = now
        state.tripped_reason = (
            f"{stream} error rate rose above its baseline {cusum.baseline:g} "
            f"(CUSUM score {score:.2f} reached {cusum.threshold:g})"
        )
        _trip(item.workflow, state, stream=stream, score=score, now=now)
    state.save()


def _observation(item: ExceptionItem, stream: str, cusum: Cusum, wrong: bool, before: float, now: datetime) -> dict:
    step = cusum.wrong_step if wrong else cusum.right_step
    return {"item": item.pk, "stream": stream, "step": step, "before": before, "at": now.timestamp()}


def _undoable(recent: list[dict], now: datetime) -> list[dict]:
    """The observations whose judgement may still be undone (the rest can no longer be withdrawn)."""
    from exceptions_app.services.undo import undo_window  # undo imports this module

    oldest = (now - undo_window()).timestamp()
    return [observation for observation in recent if observation["at"] >= oldest]


def breaker_observation_withdraw(*, item: ExceptionItem) -> str | None:
    """Take an undone judgement back out of the breaker, inside the undo's transaction: its stream's
    score becomes what it would be had the judgement never been made (the later judgements of the
    stream replayed from the score before it). A trip it caused stands: the workflow was told at
    once and its outputs held; a supervisor resets it. Answers the stream, or None if the
    judgement was not observed."""
    state = BreakerState.objects.select_for_update().filter(workflow_id=item.workflow_id).first()
    recent = list(state.recent) if state is not None else []
    index = next((index for index, observation in enumerate(recent) if observation["item"] == item.pk), None)
    if index is None:
        return None
    withdrawn = recent.pop(index)
    stream, score = withdrawn["stream"], withdrawn["before"]
    for observation in recent[index:]:
        if observation["stream"] == stream:
            observation["before"] = score
            score = max(0.0, score + observation["step"])
    setattr(state, f"{stream}_score", score)
    setattr(state, f"{stream}_judged", getattr(state, f"{stream}_judged") - 1)
    state.recent = recent
    state.save()
    return stream


def workflow_tripped_payload(workflow: Workflow, state: BreakerState, *, stream: str, public_id: str) -> dict:
    return {
        "type": "workflow.tripped",
        "delivery_id": public_id,
        "item_id": None,
        "workflow": workflow.name,
        "stream": stream,
        "reason": state.tripped_reason,
        "timestamps": {"tripped_at": iso_timestamp(state.tripped_at)},
    }


def _trip(workflow: Workflow, state: BreakerState, *, stream: str, score: float, now: datetime) -> None:
    """From now every output of the workflow is held (the gate reads ``Workflow.tripped_at``)."""
    workflow.tripped_at = now
    workflow.save(update_fields=["tripped_at"])  # its signal clears the gate's cached workflows here
    audit_record(
        action="workflow_tripped",
        actor=None,
        actor_label="system",
        workflow=workflow,
        payload={"stream": stream, "score": round(score, 3), "reason": state.tripped_reason},
        at=now,
    )
    document = _current_document(workflow)
    delivery_record_event(
        workflow=workflow,
        document=document,
        callback_url=document.get("callback_url", ""),
        build_payload=lambda public_id: workflow_tripped_payload(workflow, state, stream=stream, public_id=public_id),
        now=now,
    )


def _supervisor_workflow(principal: Principal | None, name: str) -> Workflow:
    if principal is None or principal.role != Role.SUPERVISOR:
        raise Forbidden("only supervisors reset breakers and publish thresholds")
    workflow = Workflow.objects.filter(name=name, current_policy__isnull=False).first()
    if workflow is None:
        raise NotFound(f"unknown workflow {name!r}")
    return workflow


def breaker_reset(*, workflow_name: str, principal: Principal | None, note: str = "") -> Workflow:
    """Close a tripped breaker: outputs pass the gate by policy again and the scores start afresh."""
    workflow = _supervisor_workflow(principal, workflow_name)
    now = timezone.now()
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        state = BreakerState.objects.select_for_update().filter(workflow=workflow).first()
        if workflow.tripped_at is None:
            raise IllegalTransition(f"the breaker of {workflow.name!r} is not tripped")
        tripped_at, reason = workflow.tripped_at, state.tripped_reason if state else ""
        workflow.tripped_at = None
        workflow.save(update_fields=["tripped_at"])
        if state is not None:
            state.audit_score = state.override_score = 0.0
            state.recent = []  # nothing judged before the reset can be withdrawn from the fresh scores
            state.tripped_at, state.tripped_reason = None, ""
            state.save()
        audit_record(
            action="breaker_reset",
            actor=principal.user,
            workflow=workflow,
            payload={"tripped_at": tripped_at.isoformat(), "reason": reason, "note": note},
            at=now,
        )
    return workflow


def threshold_publish(*, workflow_name: str, principal: Principal | None, auto_approve: float) -> PolicyVersion:
    """Publish the current policy with a new ``auto_approve`` (a recommendation a supervisor
    accepted): a new audited policy version. Never called by the system on its own."""
    workflow = _supervisor_workflow(principal, workflow_name)
    if not 0 <= auto_approve <= 1:
        raise InvalidInput(
            "auto_approve must be between 0 and 1", fields=[{"path": "auto_approve", "message": "between 0 and 1"}]
        )
    document = _current_document(workflow)
    previous = document["thresholds"]["auto_approve"]
    changed = {**document, "thresholds": {**document["thresholds"], "auto_approve": auto_approve}}
    try:
        with transaction.atomic():
            version, _ = policy_publish(document=changed, source=PolicySource.UI, actor=principal.user)
            audit_record(
                action="threshold_published",
                actor=principal.user,
                workflow=workflow,
                payload={"from": previous, "to": auto_approve, "version": version.version},
            )
    except PolicyInvalid as error:
        raise InvalidInput(str(error), fields=[e.as_dict() for e in error.errors]) from None
    return version
