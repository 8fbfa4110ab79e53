"""Operators work items through the API: claim, release, resolve, snooze, comment; illegal moves are 409."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app.models import AuditEvent, ExceptionItem, ItemStatus
from tests.fixtures.gate import client_for, hold, invoice_output

pytestmark = pytest.mark.django_db


def item_url(item_id: int, action: str = "") -> str:
    return f"/api/v1/exceptions/{item_id}" + (f"/{action}" if action else "")


def test_queues_show_depth_oldest_age_and_claims_for_the_operators_teams(agent_client, operator_client):
    first = hold(agent_client)
    hold(agent_client)
    operator_client.post(item_url(first, "claim"))
    client_for("nobody", "operator", teams=["other-team"])

    queues = {queue["name"]: queue for queue in operator_client.get("/api/v1/queues").json()}

    assert set(queues) == {"billing", "billing-senior"}
    assert (queues["billing"]["depth"], queues["billing"]["claimed"]) == (1, 1)
    assert queues["billing"]["oldest_age_seconds"] >= 0
    assert queues["billing"]["escalation_queue"] == "billing-senior"
    assert queues["billing-senior"]["oldest_age_seconds"] is None


def test_an_operator_outside_the_team_sees_no_queue_and_no_item(agent_client, billing_queues):
    item_id = hold(agent_client)
    outsider = client_for("nobody", "operator", teams=["other-team"])

    assert outsider.get("/api/v1/queues").json() == []
    assert outsider.post("/api/v1/queues/billing/claim-next").status_code == 404
    assert outsider.get(item_url(item_id)).status_code == 404
    assert outsider.post(item_url(item_id, "claim")).status_code == 404


def test_claim_next_takes_the_most_urgent_item_and_answers_204_when_empty(agent_client, operator_client):
    routine = hold(agent_client)
    urgent = hold(agent_client, value_at_risk="500000.00")

    first = operator_client.post("/api/v1/queues/billing/claim-next")
    second = operator_client.post("/api/v1/queues/billing/claim-next")
    empty = operator_client.post("/api/v1/queues/billing/claim-next")

    assert [first.json()["id"], second.json()["id"]] == [urgent, routine]
    assert first.json()["status"] == "claimed"
    assert first.json()["claim"]["claimed_by"] == "olga"
    assert first.json()["captured"]["proposal"] == invoice_output()
    assert empty.status_code == 204


def test_a_second_operator_cannot_act_on_a_claimed_item(agent_client, operator_client, second_operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))

    for action, body in [("claim", {}), ("release", {}), ("resolve", {"action": "approve"})]:
        response = second_operator_client.post(item_url(item_id, action), body, format="json")
        assert response.status_code == 409, action
        assert response.json()["error"]["code"] == "illegal_transition"
    assert ExceptionItem.objects.get(pk=item_id).claimed_by.username == "olga"


def test_approve_resolves_with_the_proposal_and_audits_it(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))

    response = operator_client.post(item_url(item_id, "resolve"), {"action": "approve", "note": "ok"}, format="json")

    assert response.status_code == 200
    resolution = response.json()["resolution"]
    assert (resolution["outcome"], resolution["resolved_by"]) == ("approve", "olga")
    assert resolution["final_output"] == invoice_output()
    assert response.json()["status"] == "resolved"
    actions = list(AuditEvent.objects.filter(item_id=item_id).values_list("action", flat=True))
    assert actions == ["raised", "claimed", "resolved"]
    again = operator_client.post(item_url(item_id, "resolve"), {"action": "reject", "reason_code": "x"}, format="json")
    assert again.status_code == 409


def test_modify_validates_the_edit_against_the_schema_and_keeps_the_proposal(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))

    bad = operator_client.post(
        item_url(item_id, "resolve"), {"action": "modify", "output": invoice_output(amount="lots")}, format="json"
    )
    good = operator_client.post(
        item_url(item_id, "resolve"), {"action": "modify", "output": invoice_output(amount=99.0)}, format="json"
    )

    assert bad.status_code == 400
    assert bad.json()["error"]["fields"][0]["path"] == "output.amount"
    assert good.status_code == 200
    item = ExceptionItem.objects.get(pk=item_id)
    assert item.final_output["amount"] == 99.0
    assert item.proposal == invoice_output()
    assert item.resolution == "modify"


def test_reject_needs_a_reason_code(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))

    missing = operator_client.post(item_url(item_id, "resolve"), {"action": "reject"}, format="json")
    rejected = operator_client.post(
        item_url(item_id, "resolve"), {"action": "reject", "reason_code": "wrong_customer"}, format="json"
    )

    assert missing.status_code == 400
    assert missing.json()["error"]["fields"][0]["path"] == "reason_code"
    assert rejected.json()["resolution"]["reason_code"] == "wrong_customer"
    assert rejected.json()["resolution"]["final_output"] is None


def test_escalate_moves_the_item_to_the_escalation_queue_with_more_priority(agent_client, operator_client):
    item_id = hold(agent_client)
    before = operator_client.post(item_url(item_id, "claim")).json()["priority"]

    response = operator_client.post(item_url(item_id, "resolve"), {"action": "escalate", "note": "big"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["queue"]) == ("open", "billing-senior")
    assert body["priority"] > before
    event = AuditEvent.objects.get(item_id=item_id, action="escalated")
    assert event.payload["from_queue"] == "billing"


def test_release_returns_the_item_to_the_queue(agent_client, operator_client, second_operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))

    released = operator_client.post(item_url(item_id, "release"), {"note": "not mine"}, format="json")
    taken = second_operator_client.post("/api/v1/queues/billing/claim-next")

    assert released.json()["status"] == "open"
    assert taken.json()["id"] == item_id


def test_an_expired_lease_cannot_resolve(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))
    ExceptionItem.objects.filter(pk=item_id).update(claim_expires_at=timezone.now() - timedelta(seconds=1))

    response = operator_client.post(item_url(item_id, "resolve"), {"action": "approve"}, format="json")

    assert response.status_code == 409
    assert "expired" in response.json()["error"]["message"]
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED


def test_renew_extends_the_lease(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))
    ExceptionItem.objects.filter(pk=item_id).update(claim_expires_at=timezone.now() + timedelta(seconds=5))

    response = operator_client.post(item_url(item_id, "renew"))

    expires = ExceptionItem.objects.get(pk=item_id).claim_expires_at
    assert response.status_code == 200
    assert expires > timezone.now() + timedelta(seconds=500)


def test_snooze_puts_the_item_aside_until_a_future_time(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))
    until = (timezone.now() + timedelta(hours=2)).isoformat()

    past = operator_client.post(item_url(item_id, "snooze"), {"until": "2001-01-01T00:00:00Z"}, format="json")
    snoozed = operator_client.post(item_url(item_id, "snooze"), {"until": until}, format="json")

    assert past.status_code == 400
    assert snoozed.json()["status"] == "snoozed"
    assert operator_client.post("/api/v1/queues/billing/claim-next").status_code == 204


def test_comments_join_the_timeline_which_agents_can_read(agent_client, operator_client):
    item_id = hold(agent_client)

    comment = operator_client.post(item_url(item_id, "comments"), {"text": "<b>check</b> the PO"}, format="json")
    timeline = agent_client.get(item_url(item_id, "timeline")).json()

    assert comment.status_code == 201
    assert [event["action"] for event in timeline] == ["raised", "commented"]
    assert timeline[1]["payload"]["text"] == "<b>check</b> the PO"
    assert timeline[1]["actor"] == "olga"


def test_the_item_list_is_cursor_paged_and_filtered(agent_client, operator_client):
    ids = [hold(agent_client) for _ in range(5)]
    operator_client.post(item_url(ids[0], "claim"))

    first = operator_client.get("/api/v1/exceptions", {"queue": "billing", "status": "open", "page_size": 2}).json()
    second = operator_client.get(first["next"]).json()
    claimed = operator_client.get("/api/v1/exceptions", {"status": "claimed"}).json()
    bad = operator_client.get("/api/v1/exceptions", {"status": "nonsense"})

    assert [item["id"] for item in first["results"]] == [ids[4], ids[3]]
    assert [item["id"] for item in second["results"]] == [ids[2], ids[1]]
    assert [item["id"] for item in claimed["results"]] == [ids[0]]
    assert bad.status_code == 400


def test_agents_cannot_claim_and_operators_cannot_submit(agent_client, operator_client):
    item_id = hold(agent_client)

    assert agent_client.post(item_url(item_id, "claim")).status_code == 403
    assert agent_client.post("/api/v1/queues/billing/claim-next").status_code == 403
    assert (
        operator_client.post("/api/v1/exceptions", {"workflow": "x", "reason": "y"}, format="json").status_code == 403
    )
