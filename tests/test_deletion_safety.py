"""Deleting a workflow (or a queue, an agent, a person) never deletes its items or their audit:
the foreign keys PROTECT, the ORM refuses cleanly, and the admin says so instead of failing."""

import pytest
from django.db import transaction
from django.db.models import ProtectedError

from exceptions_app.models import AuditEvent, ExceptionItem, GateDecision, PolicyVersion, Queue, Workflow
from tests.fixtures.gate import BILLING, hold

pytestmark = pytest.mark.django_db


def history() -> tuple[int, int, int, int, int]:
    return (
        Workflow.objects.count(),
        PolicyVersion.objects.count(),
        ExceptionItem.objects.count(),
        GateDecision.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def held_items(agent_client, billing_queues):
    item_ids = [hold(agent_client, correlation_id=f"keep-{number}") for number in range(2)]
    assert len(set(item_ids)) == 2
    return item_ids


def test_deleting_a_workflow_with_items_fails_and_deletes_nothing(held_items):
    before = history()
    workflow = Workflow.objects.get(name=BILLING)

    with pytest.raises(ProtectedError), transaction.atomic():
        workflow.delete()

    assert history() == before
    assert ExceptionItem.objects.filter(pk__in=held_items, workflow__name=BILLING).count() == 2


def test_the_api_has_no_way_to_delete_a_workflow(held_items, supervisor_client):
    before = history()

    response = supervisor_client.delete(f"/api/v1/workflows/{BILLING}")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert history() == before


def test_the_admin_offers_no_workflow_deletion(held_items, admin_client):
    workflow = Workflow.objects.get(name=BILLING)

    page = admin_client.get(f"/admin/exceptions_app/workflow/{workflow.pk}/delete/")
    posted = admin_client.post(f"/admin/exceptions_app/workflow/{workflow.pk}/delete/", {"post": "yes"})

    assert (page.status_code, posted.status_code) == (403, 403)
    assert Workflow.objects.filter(pk=workflow.pk).exists()


def test_deleting_a_queue_with_items_in_the_admin_says_what_stops_it(held_items, admin_client):
    queue = Queue.objects.get(name="billing")
    before = history()

    posted = admin_client.post(f"/admin/exceptions_app/queue/{queue.pk}/delete/", {"post": "yes"})

    # The admin refuses before it would even reach the PROTECT: items are never deletable there.
    assert posted.status_code == 200
    text = posted.content.decode()
    assert "Cannot delete queue" in text
    assert "<li>exception item</li>" in text
    assert Queue.objects.filter(pk=queue.pk).exists()
    assert history() == before


def test_deleting_the_agent_behind_items_in_the_admin_is_refused(held_items, admin_client, agent_client):
    principal = agent_client.principal
    before = history()

    user_page = admin_client.post(f"/admin/auth/user/{principal.user_id}/delete/", {"post": "yes"})
    principal_page = admin_client.post(f"/admin/exceptions_app/principal/{principal.pk}/delete/", {"post": "yes"})

    for page, heading in ((user_page, "Cannot delete user"), (principal_page, "Cannot delete principal")):
        assert page.status_code == 200
        assert heading in page.content.decode()
        assert "<li>exception item</li>" in page.content.decode()
    assert history() == before
