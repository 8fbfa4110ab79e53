"""Supervisors configure queues through the API; the admin shows configuration and never edits the audit log."""

import pytest

from exceptions_app.models import AuditEvent, Queue
from tests.fixtures.gate import client_for

pytestmark = pytest.mark.django_db


def test_a_supervisor_creates_and_configures_a_queue(supervisor_client):
    supervisor_client.put("/api/v1/queues/finance-senior", {"sla_seconds": 900}, format="json")

    response = supervisor_client.put(
        "/api/v1/queues/finance",
        {
            "sla_seconds": 1800,
            "escalation_queue": "finance-senior",
            "teams": ["finance"],
            "priority_weights": {"value_at_risk": 2},
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["sla_seconds"], body["escalation_queue"], body["teams"]) == (1800, "finance-senior", ["finance"])
    assert Queue.objects.get(name="finance").priority_weights == {"value_at_risk": 2}
    assert AuditEvent.objects.filter(action="queue_configured").count() == 2
    assert supervisor_client.put("/api/v1/queues/finance", {"sla_seconds": 60}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"sla_seconds": 0}, "sla_seconds"),
        ({"escalation_queue": "nowhere"}, "escalation_queue"),
        ({"escalation_queue": "finance"}, "escalation_queue"),
        ({"priority_weights": {"mood": 1}}, "priority_weights.mood"),
        ({"teams": ["Not A Slug"]}, "teams[0]"),
    ],
)
def test_bad_queue_settings_are_400_and_change_nothing(supervisor_client, body, path):
    response = supervisor_client.put("/api/v1/queues/finance", body, format="json")

    assert response.status_code == 400
    assert path in {field["path"] for field in response.json()["error"]["fields"]}
    assert not Queue.objects.filter(name="finance").exists()


def test_operators_cannot_configure_queues(db):
    operator = client_for("olga", "operator", teams=["finance"])

    assert operator.put("/api/v1/queues/finance", {"sla_seconds": 60}, format="json").status_code == 403
    assert not Queue.objects.exists()


def test_the_admin_lists_items_but_offers_no_way_to_edit_or_delete_audit_events(client, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", password="pw-for-admin-test")
    client.force_login(admin_user)

    assert client.get("/admin/exceptions_app/queue/").status_code == 200
    assert client.get("/admin/exceptions_app/auditevent/").status_code == 200
    assert client.get("/admin/exceptions_app/auditevent/add/").status_code == 403
