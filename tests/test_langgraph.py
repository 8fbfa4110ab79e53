"""LangGraph graphs (the real package) paused by ``interrupt()`` on a held output resume from
Tollgate's HumanResponse: accept, edit, response and ignore, over real HTTP against a live server,
an operator resolving through the API; and from a webhook a real worker delivers."""

import os
import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import TypedDict

import pytest
from django.db import connection
from django.utils import timezone
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from exceptions_app.client import TollgateClient, verify_webhook
from exceptions_app.integrations.langgraph import gate_node, human_interrupt, resume_command
from exceptions_app.models import Delivery, ExceptionItem, GateDecision, Workflow
from exceptions_app.services.sweeps import items_expire
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, hold, invoice_output
from tests.fixtures.workers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

DESCRIPTION = "Re-rate invoice **INV-1001**: the tariff changed in March."


class InvoiceState(TypedDict, total=False):
    adjustment: dict
    confidence: float
    review: dict
    outcome: str


def _apply(state: InvoiceState) -> dict:
    """The step after the gate: act on the final output, or say why not."""
    review = state["review"]
    if review["final_output"] is None:
        return {"outcome": f"not applied: {review['response']['type']}"}
    return {"outcome": f"applied {review['final_output']['amount']}"}


def _graph(tollgate: TollgateClient, *, captured: dict | None = None, **allowed: bool):
    def propose(state: InvoiceState) -> dict:
        request = human_interrupt("adjust_invoice", state["adjustment"], description=DESCRIPTION, **allowed)
        return {
            "request": request,
            "confidence": state["confidence"],
            "input": {"invoice_total": 900.0},
            **(captured or {}),
        }

    graph = StateGraph(InvoiceState)
    graph.add_node("gate", gate_node(tollgate, BILLING, propose=propose))
    graph.add_node("apply", _apply)
    graph.add_edge(START, "gate")
    graph.add_edge("gate", "apply")
    graph.add_edge("apply", END)
    return graph.compile(checkpointer=InMemorySaver())


@pytest.fixture
def tollgate(live_server, billing_workflow):
    token = token_create(principal=principal_ensure(name="graph-bot", role="agent", workflows=[BILLING]))[1]
    with TollgateClient(live_server.url, token) as client:
        yield client


def _resolve(operator_client, item_id: int, body: dict):
    assert operator_client.post(f"/api/v1/exceptions/{item_id}/claim").status_code == 200
    return operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", body, format="json")


def _paused(graph, thread: str, confidence: float = 0.5) -> tuple[dict, dict]:
    config = {"configurable": {"thread_id": thread}}
    result = graph.invoke({"adjustment": invoice_output(), "confidence": confidence}, config)
    return result, config


@pytest.mark.parametrize(
    ("resolution", "response_type", "outcome", "final_output"),
    [
        ({"action": "approve"}, "accept", "applied 120.5", invoice_output()),
        (
            {"action": "modify", "output": invoice_output(amount=45.0)},
            "edit",
            "applied 45.0",
            invoice_output(amount=45.0),
        ),
        (
            {"action": "respond", "note": "Use the March tariff, not February's."},
            "response",
            "not applied: response",
            None,
        ),
        ({"action": "reject", "reason_code": "duplicate"}, "ignore", "not applied: ignore", None),
    ],
    ids=["accept", "edit", "response", "ignore"],
)
def test_a_paused_graph_resumes_from_tollgates_human_response(
    tollgate, operator_client, resolution, response_type, outcome, final_output
):
    graph = _graph(tollgate)
    thread = f"thread-{response_type}"

    paused, config = _paused(graph, thread)

    [pending] = paused["__interrupt__"]
    item_id = pending.value["tollgate"]["exception_id"]
    assert pending.value["action_request"] == {"action": "adjust_invoice", "args": invoice_output()}
    assert pending.value["description"] == DESCRIPTION
    assert "review" not in paused
    item = ExceptionItem.objects.get(pk=item_id)
    assert item.proposal == invoice_output()
    assert item.interrupt["config"]["allow_respond"] is True
    assert item.correlation_id == thread  # the thread id, so a webhook receiver can resume it

    assert _resolve(operator_client, item_id, resolution).status_code == 200, resolution
    command = resume_command(tollgate, paused, timeout=10)
    finished = graph.invoke(command, config)

    expected_args = {
        "accept": {"action": "adjust_invoice", "args": invoice_output()},
        "edit": {"action": "adjust_invoice", "args": invoice_output(amount=45.0)},
        "response": "Use the March tariff, not February's.",
        "ignore": None,
    }[response_type]
    assert command.resume == {"type": response_type, "args": expected_args}
    assert "__interrupt__" not in finished
    assert finished["review"]["response"] == command.resume
    assert finished["review"]["verdict"] == "hold"
    assert finished["review"]["exception_id"] == item_id
    assert finished["review"]["final_output"] == final_output
    assert finished["outcome"] == outcome
    # The node ran twice (paused, then resumed); Tollgate recorded one decision and one item.
    assert GateDecision.objects.filter(correlation_id=thread).count() == 1
    assert ExceptionItem.objects.filter(correlation_id=thread).count() == 1
    # The same HumanResponse travels in the outbox payload (webhook body, Celery task argument, feed).
    delivery = Delivery.objects.get(item_id=item_id)
    assert delivery.payload["human_response"] == command.resume


def test_resume_waits_for_the_operator_and_the_feed_carries_the_human_response(tollgate, operator_client):
    graph = _graph(tollgate)
    paused, config = _paused(graph, "thread-waiting")
    item_id = paused["__interrupt__"][0].value["tollgate"]["exception_id"]

    def operator_edits_later():
        time.sleep(0.5)
        _resolve(operator_client, item_id, {"action": "modify", "output": invoice_output(amount=99.0)})
        connection.close()

    operator = threading.Thread(target=operator_edits_later)
    operator.start()
    started = time.monotonic()
    command = resume_command(tollgate, paused, timeout=20)
    waited = time.monotonic() - started
    operator.join()
    finished = graph.invoke(command, config)
    time.sleep(1.1)  # the feed holds back rows younger than a second
    feed, _cursor = tollgate.resolutions()

    assert 0.4 < waited < 15
    assert finished["outcome"] == "applied 99.0"
    [entry] = [entry for entry in feed if entry["item_id"] == item_id]
    assert entry["human_response"] == {
        "type": "edit",
        "args": {"action": "adjust_invoice", "args": invoice_output(amount=99.0)},
    }
    item = tollgate.get(item_id)
    assert item["resolution"]["human_response"] == entry["human_response"]


def test_proceed_and_reject_verdicts_answer_without_pausing(tollgate):
    graph = _graph(tollgate)

    proceeded, _ = _paused(graph, "thread-proceed", confidence=0.99)
    rejected, _ = _paused(graph, "thread-reject", confidence=0.01)

    assert "__interrupt__" not in proceeded
    assert proceeded["review"]["verdict"] == "proceed"
    assert proceeded["review"]["response"]["type"] == "accept"
    assert proceeded["outcome"] == "applied 120.5"
    assert rejected["review"]["verdict"] == "reject"
    assert rejected["review"]["response"] == {"type": "ignore", "args": None}
    assert rejected["outcome"] == "not applied: ignore"
    assert resume_command(tollgate, proceeded) is None


@pytest.mark.parametrize(
    ("allowed", "refused", "flag"),
    [
        ({"allow_accept": False}, {"action": "approve"}, "allow_accept"),
        ({"allow_edit": False}, {"action": "modify", "output": invoice_output(amount=1.0)}, "allow_edit"),
        ({"allow_respond": False}, {"action": "respond", "note": "try again"}, "allow_respond"),
        ({"allow_ignore": False}, {"action": "reject", "reason_code": "duplicate"}, "allow_ignore"),
        (
            {"allow_respond": False},
            {"action": "reject", "reason_code": "human_response", "note": "sneaky"},
            "allow_respond",
        ),
    ],
    ids=["accept", "edit", "respond", "ignore", "respond-as-reject"],
)
def test_an_action_the_interrupt_does_not_allow_is_refused_and_changes_nothing(
    tollgate, operator_client, allowed, refused, flag
):
    graph = _graph(tollgate, **allowed)
    paused, _ = _paused(graph, f"thread-refused-{flag}")
    item_id = paused["__interrupt__"][0].value["tollgate"]["exception_id"]

    response = _resolve(operator_client, item_id, refused)

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["fields"] == [{"path": "action", "message": error["fields"][0]["message"]}]
    assert f"config.{flag} is false" in error["message"]
    item = ExceptionItem.objects.get(pk=item_id)
    assert (item.status, item.resolution) == ("claimed", "")
    assert not Delivery.objects.filter(item_id=item_id).exists()


def test_a_response_without_text_is_400_naming_the_note(tollgate, operator_client):
    graph = _graph(tollgate)
    paused, _ = _paused(graph, "thread-empty-response")
    item_id = paused["__interrupt__"][0].value["tollgate"]["exception_id"]

    response = _resolve(operator_client, item_id, {"action": "respond", "note": "  "})

    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["path"] == "note"
    assert ExceptionItem.objects.get(pk=item_id).status == "claimed"


def test_an_item_without_an_interrupt_has_no_human_response_and_cannot_be_responded_to(agent_client, operator_client):
    item_id = hold(agent_client)

    respond = _resolve(operator_client, item_id, {"action": "respond", "note": "hello"})
    approve = operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")

    assert respond.status_code == 409
    assert approve.status_code == 200
    assert "human_response" not in approve.json()["resolution"]
    assert "human_response" not in Delivery.objects.get(item_id=item_id).payload


def test_an_expired_item_answers_with_its_fallback(tollgate):
    graph = _graph(tollgate)
    paused, config = _paused(graph, "thread-expired")
    item_id = paused["__interrupt__"][0].value["tollgate"]["exception_id"]
    ExceptionItem.objects.filter(pk=item_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    items_expire()
    finished = graph.invoke(resume_command(tollgate, paused, timeout=5), config)

    fallback = Workflow.objects.get(name=BILLING).current_policy.document.get("fallback", "reject")
    assert finished["review"]["response"]["type"] == ("accept" if fallback == "approve" else "ignore")


@pytest.mark.worker
@pytest.mark.timeout(120)
def test_a_graph_resumes_from_the_webhook_a_worker_delivers(
    tollgate, operator_client, receiver, celery_worker, billing_workflow
):
    graph = _graph(tollgate, captured={"callback_url": receiver.url})

    paused, _ = _paused(graph, "thread-webhook")
    item_id = paused["__interrupt__"][0].value["tollgate"]["exception_id"]
    _resolve(operator_client, item_id, {"action": "respond", "note": "Ask the customer first."})

    receiver.wait_for(lambda r: len(r.received) == 1, timeout=30)
    received = receiver.received[0]
    payload = verify_webhook(billing_workflow.webhook_secret, received.body, received.headers)
    finished = graph.invoke(
        Command(resume=payload["human_response"]), {"configurable": {"thread_id": payload["correlation_id"]}}
    )

    assert payload["human_response"] == {"type": "response", "args": "Ask the customer first."}
    assert finished["review"]["response"]["args"] == "Ask the customer first."
    assert finished["outcome"] == "not applied: response"


def _example(live_url: str, token: str, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "examples/langgraph_agent.py", "--url", live_url, *arguments],
        cwd=ROOT,
        env={**os.environ, "TOLLGATE_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_documented_example_runs_proceeds_and_resumes_after_a_person_edits(
    live_server, billing_workflow, operator_client
):
    token = token_create(principal=principal_ensure(name="example-graph", role="agent", workflows=[BILLING]))[1]

    proceeded = _example(live_server.url, token, "--confidence", "0.97")
    out, err = proceeded.communicate(timeout=60)
    assert proceeded.returncode == 0, err
    assert "verdict: proceed" in out
    assert '"amount": 240.0' in out

    held = _example(live_server.url, token, "--confidence", "0.6", "--wait", "30", "--thread", "example-thread")
    try:
        first = held.stdout.readline()
        assert first.startswith("paused: held as Tollgate exception"), first + held.stderr.read()
        item_id = int(first.split("exception ")[1].split(";")[0])
        edited = {"invoice_id": "INV-7001", "type": "credit", "amount": 200.0, "currency": "EUR", "reason": "dispute"}
        assert _resolve(operator_client, item_id, {"action": "modify", "output": edited}).status_code == 200
        out, err = held.communicate(timeout=60)
    finally:
        held.kill()
    assert held.returncode == 0, err
    assert '"type": "edit"' in out
    assert "verdict: hold" in out
    assert '"amount": 200.0' in out
    assert ExceptionItem.objects.get(pk=item_id).correlation_id == "example-thread"


def test_the_docs_page_example_runs_as_written(live_server, billing_workflow):
    """The gate-node example of docs/integrations/langgraph.md, with the server's address, a token,
    and a confidence the gate lets proceed (held, it would wait for a person)."""
    token = token_create(principal=principal_ensure(name="docs-graph", role="agent", workflows=[BILLING]))[1]
    page = (ROOT / "docs" / "integrations" / "langgraph.md").read_text()
    [example] = [block for block in re.findall(r"```python\n(.*?)```", page, flags=re.S) if "resume_command(" in block]
    example = example.replace("http://127.0.0.1:8000", live_server.url).replace("tg_...", token)
    example = example.replace('"confidence": 0.62', '"confidence": 0.97')

    run = subprocess.run([sys.executable, "-c", example], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("applied {'invoice_id': 'INV-7001'")
    assert GateDecision.objects.filter(correlation_id="invoice-7001", verdict="proceed").count() == 1
