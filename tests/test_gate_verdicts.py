"""Each verdict path and rule outcome of POST /api/v1/decisions."""

import pytest

from exceptions_app.models import AuditEvent, ExceptionItem, GateDecision, ItemStatus
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import BILLING, billing_document, decision_body, invoice_output

pytestmark = pytest.mark.django_db
URL = "/api/v1/decisions"


def submit(client, **changes):
    return client.post(URL, decision_body(**changes), format="json")


def test_confident_valid_output_proceeds_and_is_recorded_without_an_item(agent_client):
    response = submit(agent_client)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["verdict"] == "proceed"
    assert body["reasons"] == []
    assert body["exception"] is None
    decision = GateDecision.objects.get(pk=body["decision_id"])
    assert decision.verdict == "proceed"
    assert decision.confidence == 0.97
    assert decision.output == invoice_output()
    assert decision.policy_version.version == body["policy_version"] == 1
    assert not ExceptionItem.objects.exists()


def test_confidence_exactly_at_the_threshold_proceeds(agent_client):
    assert submit(agent_client, confidence=0.90).json()["verdict"] == "proceed"


def test_low_confidence_is_held_in_the_default_queue_with_captured_state(agent_client):
    response = submit(agent_client, confidence=0.6, context={"session": "abc"}, trace={"span": "s1"})

    body = response.json()
    assert body["verdict"] == "hold"
    assert [reason["code"] for reason in body["reasons"]] == ["low_confidence"]
    exception = body["exception"]
    assert exception["status"] == "open"
    assert exception["queue"] == "billing"
    item = ExceptionItem.objects.get(pk=exception["id"])
    assert item.decision_id == body["decision_id"]
    assert item.proposal == invoice_output()
    assert item.confidence == 0.6
    assert item.input == {"invoice_total": 900.0, "currency": "EUR"}
    assert item.context == {"session": "abc"}
    assert item.trace == {"span": "s1"}
    assert item.correlation_id == "run-42"
    assert item.policy_version.version == 1
    assert (item.due_at - item.raised_at).total_seconds() == 3600
    assert item.priority > 0
    event = AuditEvent.objects.get(item=item)
    assert (event.action, event.to_status, event.actor_label) == ("raised", ItemStatus.OPEN, "billing-bot")


def test_confidence_below_the_floor_is_rejected_without_an_item(agent_client):
    body = submit(agent_client, confidence=0.1).json()

    assert body["verdict"] == "reject"
    assert body["reasons"][0]["code"] == "below_auto_reject"
    assert body["exception"] is None
    assert GateDecision.objects.get().verdict == "reject"
    assert not ExceptionItem.objects.exists()


def test_a_fired_rule_holds_a_confident_output_in_the_rules_queue(agent_client):
    body = submit(agent_client, output=invoice_output(amount=25000.0)).json()

    assert body["verdict"] == "hold"
    assert [reason["code"] for reason in body["reasons"]] == ["large_adjustment"]
    assert body["exception"]["queue"] == "billing-senior"
    assert body["exception"]["severity"] == "high"


def test_the_most_severe_rule_sets_severity_and_priority(agent_client):
    critical = submit(
        agent_client, output=invoice_output(type="credit", amount=20000.0), input={"invoice_total": 15000.0}
    ).json()
    medium = submit(agent_client, output=invoice_output(currency="USD")).json()

    assert {reason["code"] for reason in critical["reasons"]} == {"large_adjustment", "credit_exceeds_invoice"}
    assert critical["exception"]["severity"] == "critical"
    assert medium["exception"]["severity"] == "medium"
    assert medium["exception"]["queue"] == "billing"
    assert critical["exception"]["priority"] > medium["exception"]["priority"]


def test_value_at_risk_raises_priority(agent_client):
    small = submit(agent_client, confidence=0.5, value_at_risk="10.00").json()
    large = submit(agent_client, confidence=0.5, value_at_risk="1000000.00").json()

    assert large["exception"]["priority"] > small["exception"]["priority"]


def test_an_output_breaking_the_schema_is_held_with_field_paths(agent_client):
    output = invoice_output(amount=-5, currency="euro")
    del output["invoice_id"]

    body = submit(agent_client, output=output).json()

    assert body["verdict"] == "hold"
    schema_reason = body["reasons"][0]
    assert schema_reason["code"] == "output_schema_invalid"
    paths = {error["path"] for error in schema_reason["errors"]}
    assert {"output", "output.amount", "output.currency"} <= paths


def test_a_rule_that_cannot_be_evaluated_holds_the_output(agent_client):
    document = billing_document(rules=[{"code": "needs_region", "when": "input.region == 'EU'", "severity": "low"}])
    policy_publish(document=document, source="api")

    body = submit(agent_client, input={"currency": "EUR"}).json()

    assert body["verdict"] == "hold"
    assert body["reasons"][0]["code"] == "needs_region"
    assert "error" in body["reasons"][0]


def test_a_policy_change_does_not_alter_items_already_held(agent_client, supervisor_client):
    held = submit(agent_client, confidence=0.8).json()["exception"]

    response = supervisor_client.put(
        f"/api/v1/workflows/{BILLING}", billing_document(thresholds={"auto_approve": 0.5}), format="json"
    )
    assert response.status_code == 201
    after = submit(agent_client, confidence=0.8).json()

    item = ExceptionItem.objects.get(pk=held["id"])
    assert item.policy_version.version == 1
    assert [reason["code"] for reason in item.reasons] == ["low_confidence"]
    assert item.status == ItemStatus.OPEN
    assert after["verdict"] == "proceed"
    assert after["policy_version"] == 2
