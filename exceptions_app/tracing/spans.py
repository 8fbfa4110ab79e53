"""Tollgate's spans in the agent's trace: the gate decision, the wait in the queue, the human
handling and each delivery attempt.

The decision's span context is stored with what it made (``traceparent`` on the decision and on a
held item), so spans that happen later, in other requests and processes, still join the agent's
trace: the wait (from hold to resolution) and the handling (from claim to resolution) are written
at the resolution with their real start times; each delivery attempt is a child of the context its
payload carries, and passes its own context on (webhook header, Celery task headers).

Attributes say which workflow, verdict, queue, outcome and operator (by id); never anything of the
captured state. With tracing off every function returns at once, and span helpers return ``OFF``,
one shared object that does nothing.
"""

from datetime import datetime

from django.db import transaction
from opentelemetry import context, trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

WORKFLOW = "tollgate.workflow"
VERDICT = "tollgate.verdict"
QUEUE = "tollgate.queue"
OUTCOME = "tollgate.outcome"
OPERATOR = "tollgate.operator.id"
DECISION = "tollgate.decision.id"
ITEM = "tollgate.item.id"
ITEM_KIND = "tollgate.item.kind"
DELIVERY = "tollgate.delivery.id"
DELIVERY_KIND = "tollgate.delivery.kind"
ATTEMPT = "tollgate.delivery.attempt"
REPLAYED = "tollgate.idempotent_replay"
HTTP_STATUS = "http.response.status_code"

_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None
_propagating_requests = False


def tracer_set(tracer: trace.Tracer | None, *, propagating_requests: bool) -> None:
    """Set by tracing.configuration: a tracer turns tracing on, None turns it off.
    ``propagating_requests``: our middleware reads ``traceparent`` (Django's instrumentation is off)."""
    global _tracer, _propagating_requests
    _tracer, _propagating_requests = tracer, propagating_requests and tracer is not None


def tracing_enabled() -> bool:
    return _tracer is not None


def traceparent_of(span_context: SpanContext) -> str:
    """The W3C ``traceparent`` of a span context, or "" for an invalid one."""
    if not span_context.is_valid:
        return ""
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def current_traceparent() -> str:
    """The current span's ``traceparent`` (a gate span's, for the rows it writes), or "" when off."""
    if _tracer is None:
        return ""
    return traceparent_of(trace.get_current_span().get_span_context())


def context_from(traceparent: str, tracestate: str = "") -> context.Context:
    carrier = {"traceparent": traceparent, **({"tracestate": tracestate} if tracestate else {})}
    return _propagator.extract(carrier)


def _nanoseconds(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


class _Off:
    """What every span helper returns with tracing off."""

    traceparent = ""

    def __enter__(self) -> "_Off":
        return self

    def __exit__(self, *error) -> None:
        return None

    def set(self, attributes: dict) -> None:
        pass

    def headers(self) -> dict[str, str]:
        return {}

    def decided(self, *, decision=None, item=None, replayed: bool = False) -> None:
        pass

    def batch_decided(self, results: list) -> None:
        pass

    def attempted(self, *, outcome: str, status_code: int | None) -> None:
        pass


OFF = _Off()


class _Current:
    """A span that is the current one while its ``with`` block runs, and ends with it."""

    __slots__ = ("_token", "span", "traceparent")

    def __init__(self, span: Span):
        self.span = span
        self.traceparent = traceparent_of(span.get_span_context())

    def __enter__(self) -> "_Current":
        self._token = context.attach(trace.set_span_in_context(self.span))
        return self

    def __exit__(self, kind, error, _traceback) -> None:
        context.detach(self._token)
        if error is not None:
            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, kind.__name__))
        self.span.end()

    def set(self, attributes: dict) -> None:
        self.span.set_attributes({name: value for name, value in attributes.items() if value is not None})

    def headers(self) -> dict[str, str]:
        """The headers that carry this span's context to the next hop."""
        return {"traceparent": self.traceparent} if self.traceparent else {}

    def decided(self, *, decision=None, item=None, replayed: bool = False) -> None:
        """What the gate made of one call: the verdict, and where a held or reported item waits."""
        attributes = {REPLAYED: replayed}
        if decision is not None:
            attributes.update({VERDICT: decision.verdict, DECISION: decision.pk})
        if item is not None:
            attributes.update({ITEM: item.pk, QUEUE: item.queue.name})
        self.set(attributes)

    def attempted(self, *, outcome: str, status_code: int | None) -> None:
        """How a delivery attempt went: ``delivered``, ``retry`` or ``terminal``, and the HTTP status."""
        self.set({OUTCOME: outcome, HTTP_STATUS: status_code})
        if outcome != "delivered":
            self.span.set_status(Status(StatusCode.ERROR, outcome))

    def batch_decided(self, results: list) -> None:
        """A batch's verdicts counted (``tollgate.verdict.hold`` = 12 ...) and its failed entries."""
        verdicts: dict[str, int] = {}
        workflows, failed = set(), 0
        for result in results:
            decision = getattr(result, "decision", None)
            if decision is None:
                failed += 1
                continue
            verdicts[decision.verdict] = verdicts.get(decision.verdict, 0) + 1
            workflows.add(decision.workflow.name)
        self.set(
            {
                **{f"{VERDICT}.{verdict}": count for verdict, count in verdicts.items()},
                "tollgate.batch.size": len(results),
                "tollgate.batch.failed": failed,
                **({WORKFLOW: workflows.pop()} if len(workflows) == 1 else {}),
            }
        )


def gate_span(name: str, *, workflow: str | None = None) -> _Current | _Off:
    """A span around taking in an agent's call (decision, batch, report), child of the caller's
    context; its ``traceparent`` goes on the rows it writes."""
    if _tracer is None:
        return OFF
    return _Current(_tracer.start_span(name, attributes={WORKFLOW: workflow} if workflow else None))


def queue_wait_end(item, *, outcome: str, now: datetime) -> None:
    """The item left the queue (resolved, expired, cancelled): its wait, from hold to now, and the
    handling by the operator who held its claim, as children of the span that held it. They end
    when the transaction commits, so a rolled-back resolution leaves no span. Call before the
    change that clears the claim."""
    if _tracer is None or not item.traceparent:
        return
    parent = context_from(item.traceparent)
    request = trace.get_current_span().get_span_context()  # the resolving request, when traced
    attributes = {
        WORKFLOW: item.workflow.name,
        QUEUE: item.queue.name,
        OUTCOME: outcome,
        ITEM: item.pk,
        ITEM_KIND: item.kind,
    }
    wait = _tracer.start_span(
        "tollgate.queue.wait",
        context=parent,
        start_time=_nanoseconds(item.raised_at),
        attributes=attributes,
        links=[Link(request)] if request.is_valid else None,
    )
    ended = [wait]
    if item.claimed_at is not None and item.claimed_by_id is not None:
        ended.insert(
            0,
            _tracer.start_span(
                "tollgate.review.handling",
                context=trace.set_span_in_context(wait),
                start_time=_nanoseconds(item.claimed_at),
                attributes={**attributes, OPERATOR: str(item.claimed_by_id)},
            ),
        )
    end_time = _nanoseconds(now)
    transaction.on_commit(lambda: [span.end(end_time=end_time) for span in ended])


def delivery_attempt_span(delivery, *, workflow: str) -> _Current | _Off:
    """One attempt to send a delivery, child of the context its payload carries."""
    if _tracer is None:
        return OFF
    carried = delivery.payload.get("traceparent") if isinstance(delivery.payload, dict) else None
    webhook = delivery.kind == "webhook"
    span = _tracer.start_span(
        "tollgate.delivery.attempt",
        context=context_from(carried) if carried else None,
        kind=SpanKind.CLIENT if webhook else SpanKind.PRODUCER,
        attributes={
            WORKFLOW: workflow,
            DELIVERY: delivery.public_id,
            DELIVERY_KIND: delivery.kind,
            ATTEMPT: delivery.attempts + 1,
            **({ITEM: delivery.item_id} if delivery.item_id else {}),
            **({DECISION: delivery.decision_id} if delivery.decision_id else {}),
        },
    )
    return _Current(span)


def request_context_attach(meta: dict) -> object | None:
    """Make the caller's trace context (``traceparent``, ``tracestate`` headers) current while a
    request is served, when nothing else (Django's instrumentation) does it; a token to detach."""
    header = meta.get("HTTP_TRACEPARENT") if _propagating_requests else None
    if not header:
        return None
    return context.attach(context_from(header, meta.get("HTTP_TRACESTATE", "")))


def caller_context_attach(traceparent: str, tracestate: str = "") -> object | None:
    """Make a caller's trace context current where no instrumentation reads the request (the MCP
    endpoint, outside Django), whenever tracing is on; a token to detach."""
    if _tracer is None or not traceparent:
        return None
    return context.attach(context_from(traceparent, tracestate))


def request_context_detach(token: object | None) -> None:
    if token is not None:
        context.detach(token)
