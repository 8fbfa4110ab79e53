import io

import pytest
from django.core.management import call_command

from exceptions_app.models import AuditEvent, PolicyVersion, Principal, Queue

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_loads_policies_queues_and_people_and_is_idempotent(client):
    first = seed()
    events = AuditEvent.objects.count()
    second = seed()

    assert PolicyVersion.objects.count() == 5
    assert AuditEvent.objects.count() == events
    assert "alice" in first
    assert "tollgate-operator" in second
    assert set(Queue.objects.get(name="billing").teams.values_list("name", flat=True)) == {"finance"}
    assert Queue.objects.get(name="billing").escalation_queue.name == "billing-senior"
    assert Principal.objects.get(user__username="bob").role == "operator"
    assert client.login(username="alice", password="tollgate-operator")
    names = {queue["name"] for queue in client.get("/api/v1/queues").json()}
    assert names == {"billing", "billing-senior", "reconciliation", "reconciliation-senior", "payments-security"}
