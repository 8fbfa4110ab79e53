"""Console pages and forms without a browser: visibility, clear errors, nothing half-done."""

import json

import pytest
from django.test import Client

from exceptions_app.models import AuditEvent, ExceptionItem, ItemStatus, Workflow
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import billing_document, hold, invoice_output

pytestmark = pytest.mark.django_db


def signed_in(name: str, role: str = "operator", teams=("billing-team",)) -> Client:
    principal = principal_ensure(name=name, role=role, teams=list(teams))
    client = Client()
    client.force_login(principal.user)
    return client


@pytest.fixture
def olga(billing_queues) -> Client:
    return signed_in("olga")


def claimed(client: Client, item_id: int) -> None:
    client.post(f"/items/{item_id}/claim")


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def test_the_item_page_shows_captured_state_to_the_team_and_404s_to_others(agent_client, olga):
    item_id = hold(agent_client, context={"customer": "ACME"})
    outsider = signed_in("nobody", teams=["other"])

    page = olga.get(f"/items/{item_id}")

    assert page.status_code == 200
    assert b"ACME" in page.content
    assert outsider.get(f"/items/{item_id}").status_code == 404


def test_a_user_without_a_role_gets_a_clear_403(agent_client, billing_queues, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("stranger"))

    response = client.get("/")

    assert response.status_code == 403


def test_reject_without_a_reason_code_changes_nothing_and_says_why(agent_client, olga):
    item_id = hold(agent_client)
    claimed(olga, item_id)

    response = olga.post(f"/items/{item_id}/reject", {"reason_code": "", "note": "typed before the refusal"})

    assert response.status_code == 400
    assert response.context["open_panel"] == "reject"
    assert "A rejection needs a reason" in response.context["refusal"]
    assert b"typed before the refusal" in response.content
    assert response["HX-Replace-Url"] == f"/items/{item_id}"
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED


@pytest.mark.parametrize(
    ("output", "said"),
    [("{not json", b"not valid JSON"), ('{"invoice_id": "X"}', b"is a required property")],
    ids=["not-json", "breaks-the-schema"],
)
def test_a_refused_edit_is_400_saying_why_and_changes_nothing(agent_client, olga, output, said):
    item_id = hold(agent_client)
    claimed(olga, item_id)

    response = olga.post(f"/items/{item_id}/modify", {"output": output})

    assert response.status_code == 400
    assert said in response.content
    item = ExceptionItem.objects.get(pk=item_id)
    assert (item.status, item.resolution) == (ItemStatus.CLAIMED, "")


def test_the_edit_preview_shows_the_diff(agent_client, olga):
    item_id = hold(agent_client)
    claimed(olga, item_id)

    response = olga.post(f"/items/{item_id}/edit/preview", {"output": json.dumps(invoice_output(amount=7.0))})

    assert b"schema-ok" in response.content
    assert b"+  &quot;amount&quot;: 7.0" in response.content


def test_acting_without_a_claim_is_refused_with_a_message(agent_client, olga):
    item_id = hold(agent_client)

    response = olga.post(f"/items/{item_id}/approve", follow=True)

    assert any("claim it first" in message for message in messages_of(response))
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.OPEN


def test_after_approving_the_next_item_of_the_queue_is_claimed(agent_client, olga):
    first, second = hold(agent_client), hold(agent_client)
    claimed(olga, first)

    response = olga.post(f"/items/{first}/approve", {"then": "next"})

    assert response["Location"] == f"/items/{second}"
    assert ExceptionItem.objects.get(pk=second).claimed_by.username == "olga"


def test_after_escalating_the_next_item_comes_from_the_queue_being_worked_not_the_escalation(agent_client, olga):
    # olga's team works both billing and billing-senior: the escalated item must not come straight back to her.
    escalated = hold(agent_client)
    claimed(olga, escalated)

    response = olga.post(f"/items/{escalated}/escalate", {"then": "next"})

    assert response["Location"] == "/"
    item = ExceptionItem.objects.get(pk=escalated)
    assert (item.queue.name, item.status, item.claimed_by) == ("billing-senior", ItemStatus.OPEN, None)


def test_renewing_a_lease_answers_its_new_end_or_409(agent_client, olga):
    item_id = hold(agent_client)
    claimed(olga, item_id)

    renewed = olga.post(f"/items/{item_id}/renew")
    olga.post(f"/items/{item_id}/release")
    lost = olga.post(f"/items/{item_id}/renew")

    assert "lease_expires_at" in renewed.json()
    assert lost.status_code == 409


def test_search_filters_by_reason_and_correlation_id(agent_client, olga):
    rule_hit = hold(agent_client, output=invoice_output(amount=50000.0), correlation_id="big-one")
    hold(agent_client, correlation_id="small-one")

    by_reason = olga.get("/items/search", {"reason": "large_adjustment"})
    by_correlation = olga.get("/items/search", {"correlation_id": "big-one"})
    bad_range = olga.get("/items/search", {"raised_from": "2030-01-02", "raised_to": "2030-01-01"})

    assert [item.pk for item in by_reason.context["items"]] == [rule_hit]
    assert [item.pk for item in by_correlation.context["items"]] == [rule_hit]
    assert bad_range.context["items"] == []
    assert b"after" in bad_range.content


def test_bulk_refuses_mixed_workflows_and_writes_nothing(agent_client, olga, billing_queues):
    policy_publish(document=billing_document(workflow="billing.other", queue="billing"), source="api")
    agent_client.principal.workflows.add(*Workflow.objects.all())
    first = hold(agent_client)
    second = hold(agent_client, workflow="billing.other")

    response = olga.post("/items/bulk", {"items": [first, second], "action": "approve"}, follow=True)

    assert any("one workflow" in message for message in messages_of(response))
    assert not AuditEvent.objects.filter(action="resolved").exists()


def test_bulk_reject_needs_a_reason_code(agent_client, olga):
    item_id = hold(agent_client)

    response = olga.post("/items/bulk", {"items": [item_id], "action": "reject"}, follow=True)

    assert any("reason" in message for message in messages_of(response))
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.OPEN
