"""Batches, directly reported exceptions, reading and cancelling items."""

import pytest

from exceptions_app.models import AuditEvent, ExceptionItem, GateDecision, ItemStatus
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import BILLING, billing_document, client_for, decision_body

pytestmark = pytest.mark.django_db
BATCH = "/api/v1/decisions/batch"


def test_a_batch_is_answered_in_order_and_a_bad_entry_fails_alone(agent_client):
    policy_publish(document=billing_document(workflow="routing.other"), source="file")
    entries = [
        decision_body(),
        decision_body(confidence=2),
        decision_body(confidence=0.5),
        decision_body(workflow="routing.other"),
        decision_body(workflow="no.such"),
        decision_body(confidence=0.05),
    ]

    response = agent_client.post(BATCH, {"decisions": entries}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["recorded"], body["failed"]) == (3, 3)
    results = body["results"]
    assert [result["index"] for result in results] == list(range(6))
    assert results[0]["verdict"] == "proceed"
    assert results[1]["error"]["code"] == "validation_error"
    assert results[1]["error"]["fields"][0]["path"] == "confidence"
    assert results[2]["verdict"] == "hold"
    assert results[2]["exception"]["status"] == "open"
    assert results[3]["error"]["status"] == 403
    assert results[4]["error"]["status"] == 404
    assert results[5]["verdict"] == "reject"
    assert GateDecision.objects.count() == 3
    item = ExceptionItem.objects.get()
    assert item.pk == results[2]["exception"]["id"]
    assert AuditEvent.objects.filter(item=item, action="raised").count() == 1


def test_batch_entries_are_idempotent_by_their_own_key(agent_client):
    entries = [
        {**decision_body(confidence=0.5), "idempotency_key": "b-1"},
        {**decision_body(), "idempotency_key": "b-2"},
    ]

    first = agent_client.post(BATCH, {"decisions": entries}, format="json").json()
    second = agent_client.post(BATCH, {"decisions": entries}, format="json").json()

    assert [r["decision_id"] for r in second["results"]] == [r["decision_id"] for r in first["results"]]
    assert GateDecision.objects.count() == 2
    assert ExceptionItem.objects.count() == 1


def test_a_key_repeated_within_one_batch_fails_the_repeat(agent_client):
    entries = [{**decision_body(), "idempotency_key": "dup"}, {**decision_body(), "idempotency_key": "dup"}]

    results = agent_client.post(BATCH, {"decisions": entries}, format="json").json()["results"]

    assert "verdict" in results[0]
    assert results[1]["error"]["code"] == "idempotency_key_reused"
    assert GateDecision.objects.count() == 1


@pytest.mark.parametrize("decisions", [[], [decision_body()] * 1001, "nope"])
def test_an_empty_oversized_or_malformed_batch_is_400_and_writes_nothing(agent_client, decisions):
    response = agent_client.post(BATCH, {"decisions": decisions}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["path"] == "decisions"
    assert not GateDecision.objects.exists()


def test_an_agent_reports_an_exception_directly(agent_client):
    body = {
        "workflow": BILLING,
        "reason": "tool_failure",
        "message": "ERP timed out 5 times",
        "severity": "high",
        "context": {"attempts": 5},
        "correlation_id": "run-9",
    }

    response = agent_client.post("/api/v1/exceptions", body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    replay = agent_client.post("/api/v1/exceptions", body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")

    assert response.status_code == 201, response.json()
    item = response.json()
    assert (item["kind"], item["status"], item["queue"], item["severity"]) == ("reported", "open", "billing", "high")
    assert item["reasons"][0]["code"] == "tool_failure"
    assert replay.status_code == 200
    assert replay.json()["id"] == item["id"]
    assert ExceptionItem.objects.count() == 1
    assert not GateDecision.objects.exists()


def test_a_report_with_a_bad_reason_code_is_400(agent_client):
    response = agent_client.post("/api/v1/exceptions", {"workflow": BILLING, "reason": "Not A Code!"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["path"] == "reason"
    assert not ExceptionItem.objects.exists()


def test_an_agent_reads_its_item_and_others_get_404(agent_client):
    item_id = agent_client.post("/api/v1/decisions", decision_body(confidence=0.5), format="json").json()["exception"][
        "id"
    ]
    policy_publish(document=billing_document(workflow="routing.other"), source="file")
    stranger = client_for("router-bot", "agent", workflows=["routing.other"])

    mine = agent_client.get(f"/api/v1/exceptions/{item_id}")
    theirs = stranger.get(f"/api/v1/exceptions/{item_id}")

    assert mine.status_code == 200
    assert mine.json()["status"] == "open"
    assert mine.json()["resolution"] is None
    assert mine.json()["timestamps"]["raised_at"]
    assert theirs.status_code == 404
    assert agent_client.get("/api/v1/exceptions/999999").status_code == 404


def test_an_agent_cancels_an_open_item_once(agent_client):
    item_id = agent_client.post("/api/v1/decisions", decision_body(confidence=0.5), format="json").json()["exception"][
        "id"
    ]

    cancelled = agent_client.post(f"/api/v1/exceptions/{item_id}/cancel", {"reason": "superseded"}, format="json")
    again = agent_client.post(f"/api/v1/exceptions/{item_id}/cancel", {}, format="json")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "illegal_transition"
    event = AuditEvent.objects.get(item_id=item_id, action="cancelled")
    assert (event.from_status, event.to_status, event.payload) == ("open", "cancelled", {"reason": "superseded"})
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CANCELLED
