"""The gate: outputs in, verdicts out; held outputs and reported failures become exception items."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from exceptions_app import rules
from exceptions_app.accountability.sampling import sample_draw
from exceptions_app.db_fast_paths import insert_chain, unsaved_instance
from exceptions_app.delivery.url_guard import callback_url_check
from exceptions_app.errors import Forbidden, IdempotencyConflict, InvalidInput, NotFound
from exceptions_app.models import (
    AuditEvent,
    ExceptionItem,
    GateDecision,
    ItemKind,
    ItemStatus,
    PolicyVersion,
    Principal,
    Queue,
    Verdict,
    Workflow,
)
from exceptions_app.policy.evaluation import (
    CompiledPolicy,
    Evaluation,
    breaker_hold,
    compiled_policy_cached,
    policy_compile,
    policy_evaluate,
)
from exceptions_app.services.audit import audit_event_build
from exceptions_app.services.bulk_copy import bulk_copy
from exceptions_app.services.deliveries import decision_delivered, deliveries_record_for_decisions
from exceptions_app.services.local_cache import LocalCache
from exceptions_app.services.priority import priority_compute
from exceptions_app.tracing import spans


@dataclass(frozen=True, kw_only=True)
class CapturedState:
    """What an agent sends with an output or a failure (the API's CapturedStateInput)."""

    workflow: str
    input: object = None
    context: object = None
    trace: object = None
    correlation_id: str = ""
    callback_url: str = ""
    value_at_risk: Decimal | None = None
    model_version: str = ""
    idempotency_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class DecisionRequest(CapturedState):
    output: object
    confidence: float
    interrupt: dict | None = None  # LangGraph's HumanInterrupt (exceptions_app/interrupts.py)


@dataclass(frozen=True, kw_only=True)
class ReportRequest(CapturedState):
    reason: str
    message: str = ""
    severity: str = "medium"
    output: object = None


@dataclass
class DecisionOutcome:
    decision: GateDecision
    item: ExceptionItem | None
    replayed: bool = False


@dataclass
class ItemOutcome:
    item: ExceptionItem
    replayed: bool = False


@dataclass
class _Prepared:
    request: DecisionRequest
    workflow: Workflow
    policy: CompiledPolicy
    evaluation: Evaluation
    fingerprint: str
    decision: GateDecision | None = None
    item: ExceptionItem | None = None
    audit_item: ExceptionItem | None = None  # a sampled unattended verdict; the agent never sees it
    events: list = field(default_factory=list)


# Fields added after fingerprints were first stored: left out while empty, so a retry of a request
# recorded before they existed still matches its first answer.
_FINGERPRINT_WHEN_GIVEN = frozenset({"interrupt"})


def _fingerprint_body(request) -> dict:
    return {
        name: value
        for name, value in vars(request).items()
        if name != "idempotency_key" and not (name in _FINGERPRINT_WHEN_GIVEN and value is None)
    }


def request_fingerprint(request) -> str:
    """A digest of everything the agent sent except the key, to spot a key reused for a different body."""
    body = _fingerprint_body(request)
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)
    except (orjson.JSONEncodeError, TypeError):  # a value orjson cannot write (an int past 64 bits)
        return _fingerprint_before_orjson(body)
    return hashlib.sha256(canonical).hexdigest()


def _fingerprint_before_orjson(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _same_body(stored: str, request, fingerprint: str) -> bool:
    """Whether a stored fingerprint is this request's. Rows written before the fingerprint was taken
    with orjson hold the json module's digest (non-ASCII and some floats are written differently),
    so a retry that spans the upgrade still replays instead of conflicting."""
    return stored == fingerprint or stored == _fingerprint_before_orjson(_fingerprint_body(request))


_agent_workflows = LocalCache("agent-workflows")
_queues_by_name = LocalCache("queues")


class _WorkflowScope:
    """Workflows by name for one principal (a batch may name many), kept briefly per process.

    The hot path is one query that finds the workflow among the principal's own; only when it is
    not there does a second query tell "unknown" (404) from "not yours" (403). The policy document
    is loaded only when this process has not compiled that version yet."""

    def __init__(self, principal: Principal):
        self.principal = principal
        self._workflows: dict[str, Workflow | None] = {}

    def _load(self, name: str) -> Workflow | None:
        return (
            Workflow.objects.select_related("current_policy")
            .defer("current_policy__document")
            .filter(name=name, agents=self.principal, current_policy__isnull=False)
            .first()
        )

    def get(self, name: str) -> Workflow:
        if name not in self._workflows:
            self._workflows[name] = _agent_workflows.get_or_load((self.principal.pk, name), lambda: self._load(name))
        workflow = self._workflows[name]
        if workflow is not None:
            return workflow
        if Workflow.objects.filter(name=name, current_policy__isnull=False).exists():
            raise Forbidden(
                f"this token may not submit to workflow {name!r}",
                fields=[{"path": "workflow", "message": "not among this token's workflows"}],
            )
        raise NotFound(f"unknown workflow {name!r}", fields=[{"path": "workflow", "message": "unknown workflow"}])


class _QueueCache:
    """Queues by name for one request (a batch holds many items for few queues)."""

    def __init__(self):
        self._queues: dict[str, Queue] = {}

    def get(self, name: str, *, sla_seconds: int) -> Queue:
        if name not in self._queues:
            self._queues[name] = _queues_by_name.get_or_load(
                name, lambda: Queue.objects.get_or_create(name=name, defaults={"sla_seconds": sla_seconds})[0]
            )
        return self._queues[name]


def _compiled(workflow: Workflow) -> CompiledPolicy:
    version = workflow.current_policy
    compiled = compiled_policy_cached(version.pk)
    if compiled is None:
        document = PolicyVersion.objects.values_list("document", flat=True).get(pk=version.pk)
        compiled = policy_compile(version.pk, document)
    return compiled


def _prepare(scope: _WorkflowScope, request: DecisionRequest) -> _Prepared:
    workflow = scope.get(request.workflow)
    if request.callback_url:
        callback_url_check(request.callback_url)
    policy = _compiled(workflow)
    evaluation = policy_evaluate(
        policy,
        output=request.output,
        confidence=request.confidence,
        input_data=request.input,
        context=request.context,
        value_at_risk=float(request.value_at_risk) if request.value_at_risk is not None else None,
    )
    if workflow.tripped_at is not None:
        evaluation = breaker_hold(evaluation, policy)
    return _Prepared(request, workflow, policy, evaluation, request_fingerprint(request))


def _build_rows(prepared: _Prepared, *, principal: Principal, queues: _QueueCache, now) -> None:
    request, evaluation, document = prepared.request, prepared.evaluation, prepared.policy.document
    prepared.decision = unsaved_instance(
        GateDecision,
        workflow=prepared.workflow,
        policy_version=prepared.workflow.current_policy,
        agent=principal,
        verdict=evaluation.verdict,
        confidence=request.confidence,
        reasons=evaluation.reasons,
        output=request.output,
        input=request.input,
        context=request.context,
        correlation_id=request.correlation_id,
        value_at_risk=request.value_at_risk,
        callback_url=request.callback_url,
        idempotency_key=request.idempotency_key,
        request_fingerprint=prepared.fingerprint,
        traceparent=spans.current_traceparent(),
        created_at=now,
    )
    if evaluation.verdict != Verdict.HOLD:
        _sample(prepared, principal=principal, queues=queues, now=now)
        return
    queue = queues.get(evaluation.queue, sla_seconds=document["sla_seconds"])
    rules_fired = sum(1 for reason in evaluation.reasons if reason["code"] != "low_confidence")
    prepared.item = _item_build(
        workflow=prepared.workflow,
        policy_version=prepared.workflow.current_policy,
        principal=principal,
        kind=ItemKind.HOLD,
        queue=queue,
        severity=evaluation.severity,
        reasons=evaluation.reasons,
        rules_fired=rules_fired,
        document=document,
        request=request,
        confidence=request.confidence,
        fingerprint=prepared.fingerprint,
        now=now,
        interrupt=request.interrupt,
    )


def _sample(prepared: _Prepared, *, principal: Principal, queues: "_QueueCache", now) -> None:
    """Draw whether this unattended verdict is copied to the audit queue, and record the probability
    it was drawn with on the decision (and the item) so estimates can weigh it. The agent's answer
    does not depend on the draw."""
    plan = prepared.policy.sampling
    if plan is None:
        return
    decision = prepared.decision
    probability = plan.probability(decision.verdict, decision.confidence)
    decision.audit_probability = probability
    if not sample_draw(probability):
        return
    document = prepared.policy.document
    queue = queues.get(plan.queue or prepared.policy.default_queue, sla_seconds=plan.sla_seconds)
    prepared.audit_item = _item_build(
        workflow=prepared.workflow,
        policy_version=prepared.workflow.current_policy,
        principal=principal,
        kind=ItemKind.AUDIT,
        queue=queue,
        severity="low",
        reasons=[{"code": "audit_sample", "severity": "low", "verdict": decision.verdict, "probability": probability}],
        rules_fired=0,
        document={**document, "sla_seconds": plan.sla_seconds, "expire_after_seconds": None},
        request=prepared.request,
        confidence=decision.confidence,
        fingerprint=prepared.fingerprint,
        now=now,
    )
    prepared.audit_item.sampling_probability = probability


def _item_build(
    *,
    workflow,
    policy_version,
    principal,
    kind,
    queue,
    severity,
    reasons,
    rules_fired,
    document,
    request,
    confidence,
    fingerprint,
    now,
    interrupt=None,
) -> ExceptionItem:
    expire_after = document.get("expire_after_seconds")
    return unsaved_instance(
        ExceptionItem,
        workflow=workflow,
        policy_version=policy_version,
        agent=principal,
        kind=kind,
        proposal=request.output,
        confidence=confidence,
        input=request.input,
        context=request.context,
        trace=request.trace,
        interrupt=interrupt,
        model_version=request.model_version,
        correlation_id=request.correlation_id,
        idempotency_key=request.idempotency_key if kind == ItemKind.REPORTED else None,
        request_fingerprint=fingerprint,
        traceparent=spans.current_traceparent(),
        reasons=reasons,
        severity=severity,
        value_at_risk=request.value_at_risk,
        callback_url=request.callback_url or document.get("callback_url", ""),
        status=ItemStatus.OPEN,
        queue=queue,
        priority=priority_compute(
            severity=severity,
            value_at_risk=request.value_at_risk,
            rules_fired=rules_fired,
            weights=queue.priority_weights,
        ),
        due_at=now + timedelta(seconds=document["sla_seconds"]),
        sla_near_at=rules.sla_near_at(start=now, sla_seconds=document["sla_seconds"]),
        expires_at=now + timedelta(seconds=expire_after) if expire_after else None,
        raised_at=now,
        queued_at=now,
        updated_at=now,
    )


def _raised_event(item: ExceptionItem, principal: Principal, now):
    return audit_event_build(
        action="raised",
        actor=principal.user,
        item=item,
        workflow=item.workflow,
        to_status=ItemStatus.OPEN,
        payload={"queue": item.queue.name, "priority": item.priority, "reasons": [r["code"] for r in item.reasons]},
        at=now,
    )


def _same_body_check(stored: str, request, fingerprint: str) -> None:
    """An Idempotency-Key replays only the request it was first sent with."""
    if not _same_body(stored, request, fingerprint):
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request body",
            fields=[{"path": "Idempotency-Key", "message": "reused with a different body"}],
        )


def _replay(principal: Principal, key: str, request, fingerprint: str) -> DecisionOutcome | None:
    existing = (
        GateDecision.objects.select_related("workflow", "policy_version")
        .filter(agent=principal, idempotency_key=key)
        .first()
    )
    if existing is None:
        return None
    _same_body_check(existing.request_fingerprint, request, fingerprint)
    item = (
        ExceptionItem.objects.select_related("queue", "workflow", "policy_version")
        .filter(decision=existing, kind=ItemKind.HOLD)
        .first()
    )
    return DecisionOutcome(decision=existing, item=item, replayed=True)


def decision_submit(*, principal: Principal, request: DecisionRequest) -> DecisionOutcome:
    """Evaluate one output, record the decision, and hold it as an item when the policy says so."""
    with spans.gate_span("tollgate.gate.decision", workflow=request.workflow) as span:
        outcome = _decision_submit(principal, request)
        span.decided(decision=outcome.decision, item=outcome.item, replayed=outcome.replayed)
        return outcome


def _decision_submit(principal: Principal, request: DecisionRequest) -> DecisionOutcome:
    scope = _WorkflowScope(principal)
    prepared = _prepare(scope, request)
    if request.idempotency_key:
        replay = _replay(principal, request.idempotency_key, request, prepared.fingerprint)
        if replay is not None:
            return replay
    now = timezone.now()
    _build_rows(prepared, principal=principal, queues=_QueueCache(), now=now)
    try:
        if prepared.audit_item is None and not decision_delivered(prepared.decision):
            # No outbox row and no audit copy: the decision, and its item and the item's event for a
            # hold, go in as one statement, with no transaction round trips around it.
            _decision_insert(prepared, principal=principal, now=now)
            return DecisionOutcome(decision=prepared.decision, item=prepared.item)
        with transaction.atomic():
            prepared.decision.save(force_insert=True)
            deliveries_record_for_decisions(decisions=[prepared.decision], now=now)
            for item in (prepared.item, prepared.audit_item):
                if item is not None:
                    item.decision = prepared.decision
                    item.save(force_insert=True)
                    _raised_event(item, principal, now).save(force_insert=True)
    except IntegrityError:
        # A concurrent retry with the same key won the insert; answer with its result.
        replay = (
            _replay(principal, request.idempotency_key, request, prepared.fingerprint)
            if request.idempotency_key
            else None
        )
        if replay is None:
            raise
        return replay
    return DecisionOutcome(decision=prepared.decision, item=prepared.item)


def _decision_insert(prepared: _Prepared, *, principal: Principal, now) -> None:
    if prepared.item is None:
        insert_chain(prepared.decision)
        return
    insert_chain(prepared.decision, (prepared.item, "decision"), (_raised_event(prepared.item, principal, now), "item"))


def decisions_submit_batch(*, principal: Principal, requests: list) -> list:
    """Evaluate many outputs in one transaction. ``requests`` holds DecisionRequest objects, or an
    exception already raised for an entry that failed validation; each result is a DecisionOutcome
    or that entry's DomainError, in order. One bad entry never stops the others. One span for the
    batch, whose context its rows carry: a span per entry would cost more than the entry."""
    with spans.gate_span("tollgate.gate.batch") as span:
        results = _submit_batch(principal, requests)
        span.batch_decided(results)
        return results


def _submit_batch(principal: Principal, requests: list) -> list:
    for _attempt in range(2):
        try:
            return _submit_batch_once(principal, requests)
        except IntegrityError:
            continue  # a concurrent request inserted one of our keys; the next pass replays it
    return _submit_batch_once(principal, requests)


def _submit_batch_once(principal: Principal, requests: list) -> list:
    scope = _WorkflowScope(principal)
    queues = _QueueCache()
    now = timezone.now()
    results: list = list(requests)
    pending: dict[int, _Prepared] = {}
    seen_keys: dict[str, int] = {}
    keys = [
        request.idempotency_key
        for request in requests
        if isinstance(request, DecisionRequest) and request.idempotency_key
    ]
    existing = (
        {
            decision.idempotency_key: decision
            for decision in GateDecision.objects.select_related("workflow", "policy_version").filter(
                agent=principal, idempotency_key__in=keys
            )
        }
        if keys
        else {}
    )
    existing_items = (
        {
            item.decision_id: item
            for item in ExceptionItem.objects.select_related("queue", "workflow", "policy_version").filter(
                decision__in=list(existing.values()), kind=ItemKind.HOLD
            )
        }
        if existing
        else {}
    )

    for index, request in enumerate(requests):
        if not isinstance(request, DecisionRequest):
            continue
        try:
            prepared = _prepare(scope, request)
            key = request.idempotency_key
            if key and key in existing:
                decision = existing[key]
                if not _same_body(decision.request_fingerprint, request, prepared.fingerprint):
                    raise IdempotencyConflict("this idempotency_key was already used with a different body")
                results[index] = DecisionOutcome(decision=decision, item=existing_items.get(decision.pk), replayed=True)
                continue
            if key and key in seen_keys:
                raise IdempotencyConflict(f"idempotency_key repeats entry {seen_keys[key]} of this batch")
            if key:
                seen_keys[key] = index
            _build_rows(prepared, principal=principal, queues=queues, now=now)
            pending[index] = prepared
        except (NotFound, Forbidden, IdempotencyConflict, InvalidInput) as error:
            results[index] = error

    with transaction.atomic():
        decisions = bulk_copy(GateDecision, [prepared.decision for prepared in pending.values()])
        deliveries_record_for_decisions(decisions=decisions, now=now)
        raised = []  # holds, and the audit copies of sampled verdicts: one COPY for both
        for prepared in pending.values():
            for item in (prepared.item, prepared.audit_item):
                if item is not None:
                    item.decision = prepared.decision
                    raised.append(item)
        bulk_copy(ExceptionItem, raised)
        bulk_copy(AuditEvent, [_raised_event(item, principal, now) for item in raised])
    for index, prepared in pending.items():
        results[index] = DecisionOutcome(decision=prepared.decision, item=prepared.item)
    return results


def exception_report(*, principal: Principal, request: ReportRequest) -> ItemOutcome:
    """An agent reports a failure directly (no gate decision); it lands in the policy's queue."""
    with spans.gate_span("tollgate.exception.report", workflow=request.workflow) as span:
        outcome = _exception_report(principal, request)
        span.decided(item=outcome.item, replayed=outcome.replayed)
        return outcome


def _exception_report(principal: Principal, request: ReportRequest) -> ItemOutcome:
    scope = _WorkflowScope(principal)
    workflow = scope.get(request.workflow)
    if request.callback_url:
        callback_url_check(request.callback_url)
    policy = _compiled(workflow)
    fingerprint = request_fingerprint(request)
    if request.idempotency_key:
        existing = _reported_replay(principal, request.idempotency_key, request, fingerprint)
        if existing is not None:
            return existing
    now = timezone.now()
    queue = _QueueCache().get(policy.default_queue, sla_seconds=policy.document["sla_seconds"])
    item = _item_build(
        workflow=workflow,
        policy_version=workflow.current_policy,
        principal=principal,
        kind=ItemKind.REPORTED,
        queue=queue,
        severity=request.severity,
        reasons=[{"code": request.reason, "severity": request.severity, "message": request.message}],
        rules_fired=1,
        document=policy.document,
        request=request,
        confidence=None,
        fingerprint=fingerprint,
        now=now,
    )
    try:
        with transaction.atomic():
            item.save(force_insert=True)
            _raised_event(item, principal, now).save(force_insert=True)
    except IntegrityError:
        existing = (
            _reported_replay(principal, request.idempotency_key, request, fingerprint)
            if request.idempotency_key
            else None
        )
        if existing is None:
            raise
        return existing
    return ItemOutcome(item=item)


def _reported_replay(principal: Principal, key: str, request, fingerprint: str) -> ItemOutcome | None:
    item = (
        ExceptionItem.objects.select_related("queue", "workflow", "policy_version")
        .filter(agent=principal, idempotency_key=key, kind=ItemKind.REPORTED)
        .first()
    )
    if item is None:
        return None
    _same_body_check(item.request_fingerprint, request, fingerprint)
    return ItemOutcome(item=item, replayed=True)
