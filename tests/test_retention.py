from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app.models import ExceptionItem, GateDecision
from exceptions_app.services.retention import decisions_purge
from tests.fixtures.gate import decision_body

pytestmark = pytest.mark.django_db


def test_decisions_past_retention_are_purged_and_items_keep_their_state(agent_client, settings):
    settings.TOLLGATE_DECISION_RETENTION_DAYS = 30
    old = agent_client.post("/api/v1/decisions", decision_body(confidence=0.5), format="json").json()
    recent = agent_client.post("/api/v1/decisions", decision_body(), format="json").json()
    GateDecision.objects.filter(pk=old["decision_id"]).update(created_at=timezone.now() - timedelta(days=31))

    assert decisions_purge() == 1

    assert list(GateDecision.objects.values_list("id", flat=True)) == [recent["decision_id"]]
    item = ExceptionItem.objects.get(pk=old["exception"]["id"])
    assert item.decision_id is None
    assert item.proposal == decision_body()["output"]
