"""OpenTelemetry: an agent's trace runs through the gate, the wait in the queue, the human handling
and every delivery attempt, and arrives at the agent again (webhook header and payload, Celery task
headers). Spans are read with the SDK's in-memory exporter; deliveries go to a real HTTP receiver
and to real Redis. With tracing off nothing is traced and everything works as before."""

import os
import time

import httpx
import pytest
from kombu import Connection
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exceptions_app.delivery.signing import signature_verify
from exceptions_app.models import Delivery, ExceptionItem, GateDecision, Workflow
from exceptions_app.services.delivery_attempts import deliveries_drain
from exceptions_app.services.policies import policy_publish
from exceptions_app.tracing import spans
from exceptions_app.tracing.configuration import tracing_install, tracing_uninstall
from tests.fixtures.gate import BILLING, billing_document, decision_body, invoice_output

pytestmark = pytest.mark.django_db(transaction=True)

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def tracer_with_memory(instrumentations: list[str]) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing_install(provider, instrumentations=instrumentations)
    return exporter


@pytest.fixture
def traced():
    """Tracing on, with Django's instrumentation (as OTEL_* variables turn it on), into memory."""
    exporter = tracer_with_memory(["django"])
    yield exporter
    tracing_uninstall()


@pytest.fixture
def traced_without_django():
    exporter = tracer_with_memory([])
    yield exporter
    tracing_uninstall()


def by_name(exporter: InMemorySpanExporter, name: str) -> list:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def one(exporter: InMemorySpanExporter, name: str):
    found = by_name(exporter, name)
    assert len(found) == 1, [span.name for span in exporter.get_finished_spans()]
    return found[0]


def server_span(exporter: InMemorySpanExporter, route_end: str):
    """Django's span for the one request whose route ends so."""
    (found,) = [
        span
        for span in exporter.get_finished_spans()
        if span.kind.name == "SERVER" and span.name.startswith("POST") and span.name.endswith(route_end)
    ]
    return found


def hex_ids(span) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def traceparent(span) -> str:
    trace_id, span_id = hex_ids(span)
    return f"00-{trace_id}-{span_id}-01"


def nanoseconds(moment) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def parent_id(span) -> str:
    return f"{span.parent.span_id:016x}"


def submit_held(agent_client, **changes) -> dict:
    response = agent_client.post(
        "/api/v1/decisions",
        decision_body(confidence=0.5, **changes),
        format="json",
        HTTP_TRACEPARENT=TRACEPARENT,
    )
    assert response.status_code == 200, response.json()
    return response.json()


def claim_and_resolve(operator_client, item_id: int, action: str = "approve", **body) -> None:
    assert operator_client.post(f"/api/v1/exceptions/{item_id}/claim").status_code == 200
    response = operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": action, **body}, format="json")
    assert response.status_code == 200, response.json()


def assert_no_captured_state(span) -> None:
    """Attributes name the workflow, verdict, queue, outcome, operator: never the output, input or context."""
    for value in span.attributes.values():
        assert "INV-1001" not in str(value), (span.name, dict(span.attributes))
        assert "900.0" not in str(value), (span.name, dict(span.attributes))


def test_an_incoming_traceparent_runs_through_hold_wait_handling_and_the_webhook(
    traced, agent_client, operator_client, receiver
):
    answer = submit_held(agent_client, callback_url=receiver.url)
    item_id = answer["exception"]["id"]
    claim_and_resolve(operator_client, item_id)
    assert deliveries_drain() == 1  # this process sends it: its spans land in this exporter

    decision = one(traced, "tollgate.gate.decision")
    server = server_span(traced, "decisions")
    wait = one(traced, "tollgate.queue.wait")
    handling = one(traced, "tollgate.review.handling")
    attempt = one(traced, "tollgate.delivery.attempt")
    # One trace, the caller's: its span -> Django's server span -> the decision -> wait -> handling,
    # and the decision -> the delivery attempt -> the receiver.
    for span in (server, decision, wait, handling, attempt):
        assert hex_ids(span)[0] == CALLER_TRACE, span.name
    assert parent_id(server) == CALLER_SPAN
    assert parent_id(decision) == hex_ids(server)[1]
    assert parent_id(wait) == hex_ids(decision)[1]
    assert parent_id(handling) == hex_ids(wait)[1]
    assert parent_id(attempt) == hex_ids(decision)[1]

    item = ExceptionItem.objects.get(pk=item_id)
    assert item.traceparent == GateDecision.objects.get(pk=answer["decision_id"]).traceparent == traceparent(decision)
    assert (wait.start_time, wait.end_time) == (nanoseconds(item.raised_at), nanoseconds(item.resolved_at))
    assert (handling.start_time, handling.end_time) == (nanoseconds(item.first_claimed_at), wait.end_time)
    assert decision.attributes["tollgate.workflow"] == BILLING
    assert decision.attributes["tollgate.verdict"] == "hold"
    assert decision.attributes["tollgate.queue"] == "billing"
    assert (wait.attributes["tollgate.outcome"], wait.attributes["tollgate.queue"]) == ("approve", "billing")
    assert handling.attributes["tollgate.operator.id"] == str(operator_client.principal.user_id)
    assert (attempt.attributes["tollgate.outcome"], attempt.attributes["http.response.status_code"]) == (
        "delivered",
        200,
    )
    # The wait links to the operator's resolve request (its own trace).
    resolve_request = server_span(traced, "/resolve")
    assert [link.context.span_id for link in wait.links] == [resolve_request.context.span_id]
    for span in (decision, wait, handling, attempt):
        assert_no_captured_state(span)

    (delivered,) = receiver.received
    assert delivered.headers["traceparent"] == traceparent(attempt)
    secret = Workflow.objects.get(name=BILLING).webhook_secret
    payload = signature_verify(secret=secret, body=delivered.body, headers=delivered.headers)
    assert payload["traceparent"] == traceparent(decision)


@pytest.fixture
def traced_with_celery():
    exporter = tracer_with_memory(["django", "celery"])
    yield exporter
    tracing_uninstall()


@pytest.mark.parametrize("instrumentations", ["django", "django and celery"])
def test_a_celery_task_delivery_carries_the_trace_in_its_headers_and_payload(
    instrumentations, request, agent_client, operator_client
):
    traced = request.getfixturevalue("traced" if instrumentations == "django" else "traced_with_celery")
    document = billing_document(callback_task="agent.resume_invoice", callback_queue="agent-traced")
    policy_publish(document=document, source="api")
    item_id = submit_held(agent_client)["exception"]["id"]
    claim_and_resolve(operator_client, item_id, "modify", output=invoice_output(amount=99.0))
    assert deliveries_drain() == 1

    with Connection(os.environ["REDIS_URL"]) as connection:
        queue = connection.SimpleQueue("agent-traced")
        message = queue.get(timeout=15)
        message.ack()
        queue.close()
    attempt = one(traced, "tollgate.delivery.attempt")
    decision = one(traced, "tollgate.gate.decision")
    assert attempt.kind.name == "PRODUCER"
    # Celery's instrumentation, when on, puts its publish span (a child of the attempt) in between.
    (carried,) = [span for span in traced.get_finished_spans() if traceparent(span) == message.headers["traceparent"]]
    assert carried is attempt or parent_id(carried) == hex_ids(attempt)[1]
    assert hex_ids(carried)[0] == CALLER_TRACE
    assert not trace.get_current_span().get_span_context().is_valid  # nothing left current after the publish
    assert message.payload[0][0]["traceparent"] == traceparent(decision)
    assert one(traced, "tollgate.queue.wait").attributes["tollgate.outcome"] == "modify"


def test_without_djangos_instrumentation_the_middleware_still_joins_the_callers_trace(
    traced_without_django, agent_client, operator_client
):
    item_id = submit_held(agent_client)["exception"]["id"]
    agent_client.post(f"/api/v1/exceptions/{item_id}/cancel", {"reason": "superseded"}, format="json")

    decision = one(traced_without_django, "tollgate.gate.decision")
    wait = one(traced_without_django, "tollgate.queue.wait")
    assert not [span for span in traced_without_django.get_finished_spans() if span.kind.name == "SERVER"]
    assert (hex_ids(decision)[0], parent_id(decision)) == (CALLER_TRACE, CALLER_SPAN)
    assert parent_id(wait) == hex_ids(decision)[1]
    assert wait.attributes["tollgate.outcome"] == "cancelled"
    assert not by_name(traced_without_django, "tollgate.review.handling")  # nobody handled it


def test_a_batch_is_one_span_whose_context_its_held_items_carry(traced, agent_client):
    entries = [decision_body(confidence=0.97), decision_body(confidence=0.5), {"workflow": BILLING}]
    response = agent_client.post(
        "/api/v1/decisions/batch", {"decisions": entries}, format="json", HTTP_TRACEPARENT=TRACEPARENT
    )
    assert response.status_code == 200, response.json()

    batch = one(traced, "tollgate.gate.batch")
    assert hex_ids(batch)[0] == CALLER_TRACE
    assert batch.attributes["tollgate.verdict.proceed"] == 1
    assert batch.attributes["tollgate.verdict.hold"] == 1
    assert (batch.attributes["tollgate.batch.size"], batch.attributes["tollgate.batch.failed"]) == (3, 1)
    held = ExceptionItem.objects.get(pk=response.json()["results"][1]["exception"]["id"])
    assert held.traceparent == traceparent(batch)


def test_with_tracing_off_nothing_is_traced_and_deliveries_carry_no_trace(agent_client, operator_client, receiver):
    exporter = tracer_with_memory(["django"])
    tracing_uninstall()  # on, then off again: the provider is still there, nothing may reach it
    assert not spans.tracing_enabled()
    assert spans.gate_span("tollgate.gate.decision") is spans.OFF

    item_id = submit_held(agent_client, callback_url=receiver.url)["exception"]["id"]
    claim_and_resolve(operator_client, item_id)
    assert deliveries_drain() == 1

    assert exporter.get_finished_spans() == ()
    assert ExceptionItem.objects.get(pk=item_id).traceparent == ""
    assert "traceparent" not in Delivery.objects.get(item_id=item_id).payload
    (delivered,) = receiver.received
    assert "traceparent" not in delivered.headers
    assert delivered.json["verdict"] == "approve"


@pytest.mark.timeout(120)
def test_the_server_turns_tracing_on_from_otel_variables(asgi_server_factory, agent_client):
    """OTEL_TRACES_EXPORTER=console on the real server: the decision's span is written to its output,
    in the caller's trace, with no error."""
    server = asgi_server_factory(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100")
    token = agent_client._credentials["HTTP_AUTHORIZATION"]
    response = httpx.post(
        f"{server.url}/api/v1/decisions",
        json=decision_body(confidence=0.5),
        headers={"authorization": token, "traceparent": TRACEPARENT},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 10  # the batch processor exports every 100 ms here
    while '"name": "tollgate.gate.decision"' not in server.log_tail(200_000) and time.monotonic() < deadline:
        time.sleep(0.1)

    log = server.log_tail(200_000)
    assert '"name": "tollgate.gate.decision"' in log
    assert f'"trace_id": "0x{CALLER_TRACE}"' in log
    assert "Traceback" not in log


@pytest.mark.worker
def test_a_traced_worker_delivers_in_the_callers_trace(traced, agent_client, operator_client, receiver, worker_factory):
    """The delivery runs in a real worker process, traced by its OTEL_* variables: the receiver gets a
    traceparent in the caller's trace, for the worker's attempt span (not one of this process's)."""
    start_worker, _ = worker_factory
    start_worker("traced", OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100")
    item_id = submit_held(agent_client, callback_url=receiver.url)["exception"]["id"]
    claim_and_resolve(operator_client, item_id)

    receiver.wait_for(lambda r: len(r.received) == 1, timeout=20)
    header = receiver.received[0].headers["traceparent"]
    version, trace_id, span_id, flags = header.split("-")
    assert (version, trace_id, flags) == ("00", CALLER_TRACE, "01")
    assert span_id not in {hex_ids(span)[1] for span in traced.get_finished_spans()}
    assert receiver.received[0].json["traceparent"] == traceparent(one(traced, "tollgate.gate.decision"))


@pytest.mark.timeout(120)
def test_an_mcp_request_review_joins_the_agents_trace(asgi_server_factory, agent_client):
    """An agent calling request_review over MCP with a ``traceparent`` header: the gate's span, whose
    context the decision stores, is in the agent's trace (MCP is served outside Django, so no
    instrumentation reads the header for it)."""
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from exceptions_app.services.tokens import principal_ensure, token_create
    from tests.fixtures.loops import run_in_new_loop

    server = asgi_server_factory(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100")
    token = token_create(principal=principal_ensure(name="mcp-traced", role="agent", workflows=[BILLING]))[1]
    headers = {"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT}

    async def scenario():
        http = create_mcp_http_client(headers=headers)
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
            body = decision_body(confidence=0.99, correlation_id="mcp-traced")
            return await client.call_tool("request_review", {**body, "wait_seconds": 0})

    result = run_in_new_loop(scenario())

    assert not result.is_error, result.content
    decision = GateDecision.objects.get(correlation_id="mcp-traced")
    assert decision.traceparent.startswith(f"00-{CALLER_TRACE}-"), decision.traceparent
    assert decision.traceparent.split("-")[2] != CALLER_SPAN  # the gate's own span, a child of the agent's


@pytest.mark.parametrize("model", [GateDecision, ExceptionItem])
def test_rows_written_by_sql_that_does_not_name_traceparent_get_it_empty(model):
    # The replay and capacity benchmarks load rows by COPY with their own column lists: with only a
    # Python default, the new column broke them with a NOT NULL violation.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_default FROM information_schema.columns"
            " WHERE table_name = %s AND column_name = 'traceparent'",
            [model._meta.db_table],
        )
        assert cursor.fetchone()[0].startswith("''")
