"""Pull APIs for agents (long-poll, resolutions feed), callback safety at submit, webhook secrets."""

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from exceptions_app.models import Delivery, ExceptionItem, GateDecision, TargetKind, Workflow
from exceptions_app.services import feed
from tests.fixtures.gate import BILLING, billing_document, decision_body, hold

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["http://10.0.0.7/hook", "http://169.254.169.254/", "http://192.168.0.10:8080/x"])
def test_a_private_callback_is_refused_at_submit_with_a_clear_error(agent_client, url):
    response = agent_client.post("/api/v1/decisions", decision_body(callback_url=url), format="json")

    assert response.status_code == 400
    field = response.json()["error"]["fields"][0]
    assert field["path"] == "callback_url"
    assert "private" in field["message"]
    assert not GateDecision.objects.exists()


def test_a_private_callback_in_a_batch_fails_only_its_entry(agent_client):
    entries = [decision_body(), decision_body(callback_url="http://10.0.0.7/hook")]

    results = agent_client.post("/api/v1/decisions/batch", {"decisions": entries}, format="json").json()["results"]

    assert "verdict" in results[0]
    assert results[1]["error"]["fields"][0]["path"] == "callback_url"


def resolve(operator_client, item_id: int) -> None:
    operator_client.post(f"/api/v1/exceptions/{item_id}/claim")
    operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")


def test_the_feed_lists_resolutions_in_order_and_advancing_acknowledges(agent_client, operator_client, monkeypatch):
    monkeypatch.setattr(feed, "VISIBILITY_LAG", timezone.timedelta(0))
    first, second = hold(agent_client), hold(agent_client)
    resolve(operator_client, second)
    resolve(operator_client, first)

    page = agent_client.get("/api/v1/resolutions").json()
    assert [entry["item_id"] for entry in page["results"]] == [second, first]
    assert page["results"][0]["verdict"] == "approve"
    assert ExceptionItem.objects.filter(acknowledged_at__isnull=False).count() == 0

    after_first = page["results"][0]["cursor"]
    rest = agent_client.get("/api/v1/resolutions", {"after": after_first}).json()

    assert [entry["item_id"] for entry in rest["results"]] == [first]
    assert ExceptionItem.objects.get(pk=second).acknowledged_at is not None
    assert ExceptionItem.objects.get(pk=first).acknowledged_at is None
    assert Delivery.objects.get(item_id=second, kind=TargetKind.POLL).status == "delivered"
    # Without `after`, reading resumes from the stored cursor.
    assert [entry["item_id"] for entry in agent_client.get("/api/v1/resolutions").json()["results"]] == [first]


def test_fresh_resolutions_wait_out_the_visibility_lag(agent_client, operator_client):
    resolve(operator_client, hold(agent_client))

    assert agent_client.get("/api/v1/resolutions").json()["results"] == []


def test_the_feed_refuses_a_bad_cursor_and_people(agent_client, operator_client):
    assert agent_client.get("/api/v1/resolutions", {"after": "-1"}).status_code == 400
    assert agent_client.get("/api/v1/resolutions", {"limit": "9999"}).status_code == 400
    assert operator_client.get("/api/v1/resolutions").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_long_poll_returns_as_soon_as_the_item_is_resolved(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(f"/api/v1/exceptions/{item_id}/claim")

    def resolve_later():
        time.sleep(0.7)
        operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")
        connection.close()

    thread = threading.Thread(target=resolve_later)
    started = time.monotonic()
    thread.start()
    response = agent_client.get(f"/api/v1/exceptions/{item_id}", {"wait": 10})
    elapsed = time.monotonic() - started
    thread.join()

    assert response.json()["status"] == "resolved"
    assert 0.6 < elapsed < 5


def test_long_poll_times_out_with_the_current_state_and_is_bounded(agent_client):
    item_id = hold(agent_client)

    started = time.monotonic()
    response = agent_client.get(f"/api/v1/exceptions/{item_id}", {"wait": 1})

    assert response.json()["status"] == "open"
    assert time.monotonic() - started >= 0.9
    assert agent_client.get(f"/api/v1/exceptions/{item_id}", {"wait": 301}).status_code == 400


def test_creating_a_workflow_shows_its_secret_once_and_updates_never_do(supervisor_client):
    created = supervisor_client.put("/api/v1/workflows/new.flow", billing_document(workflow="new.flow"), format="json")
    updated = supervisor_client.put(
        "/api/v1/workflows/new.flow", billing_document(workflow="new.flow", sla_seconds=60), format="json"
    )

    assert created.json()["webhook_secret"] == Workflow.objects.get(name="new.flow").webhook_secret
    assert created.json()["webhook_secret"].startswith("whsec_")
    assert "webhook_secret" not in updated.json()
    assert "webhook_secret" not in supervisor_client.get("/api/v1/workflows/new.flow").json()


def test_a_supervisor_rotates_the_secret_and_the_old_one_keeps_signing_for_a_while(supervisor_client, billing_workflow):
    old = billing_workflow.webhook_secret
    new = "whsec_" + "A" * 44

    response = supervisor_client.put(
        f"/api/v1/workflows/{BILLING}", {**billing_document(), "webhook_secret": new}, format="json"
    )

    workflow = Workflow.objects.get(name=BILLING)
    assert response.status_code == 200
    assert "webhook_secret" not in response.json()
    assert (workflow.webhook_secret, workflow.previous_webhook_secret) == (new, old)
    assert workflow.previous_secret_retires_at > timezone.now() + timezone.timedelta(hours=23)


@pytest.mark.parametrize("secret", ["not-a-secret", "whsec_short", 12345])
def test_a_malformed_secret_is_refused_and_nothing_changes(supervisor_client, billing_workflow, secret):
    response = supervisor_client.put(
        f"/api/v1/workflows/{BILLING}", {**billing_document(sla_seconds=5), "webhook_secret": secret}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["path"] == "webhook_secret"
    workflow = Workflow.objects.get(name=BILLING)
    assert workflow.webhook_secret == billing_workflow.webhook_secret
    assert workflow.current_policy.version == 1


def test_only_supervisors_see_and_redeliver_dead_letters(agent_client, operator_client):
    assert operator_client.get("/api/v1/deliveries").status_code == 403
    assert agent_client.post("/api/v1/deliveries/redeliver", {"delivery_ids": ["x"]}, format="json").status_code == 403
