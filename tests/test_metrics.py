import pytest
from prometheus_client.parser import text_string_to_metric_families

from exceptions_app.services.snapshots import snapshots_take
from exceptions_app.services.tallies import tallies_advance
from tests.fixtures.gate import decision_body, hold

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_report_queues_decisions_resolutions_and_latency(client, agent_client, operator_client):
    agent_client.post("/api/v1/decisions", decision_body(), format="json")
    first, _second = hold(agent_client), hold(agent_client)
    operator_client.post(f"/api/v1/exceptions/{first}/claim")
    operator_client.post(f"/api/v1/exceptions/{first}/resolve", {"action": "approve"}, format="json")
    tallies_advance()
    snapshots_take()

    samples = scrape(client)

    workflow = "billing.invoice_adjustment"
    assert samples[("tollgate_decisions_total", (("verdict", "proceed"), ("workflow", workflow)))] == 1
    assert samples[("tollgate_decisions_total", (("verdict", "hold"), ("workflow", workflow)))] == 2
    assert samples[("tollgate_queue_depth", (("queue", "billing"),))] == 1
    assert samples[("tollgate_queue_oldest_age_seconds", (("queue", "billing"),))] >= 0
    assert samples[("tollgate_resolutions_total", (("outcome", "approve"), ("workflow", workflow)))] == 1
    assert samples[("tollgate_handling_seconds_count", ())] == 1
    assert samples[("tollgate_handling_seconds_bucket", (("le", "+Inf"),))] == 1
    assert samples[("tollgate_dead_letters", ())] == 0


def test_metrics_refuse_non_loopback_clients_without_a_token(client, db):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


def test_with_a_token_set_metrics_need_it(client, settings, db):
    settings.TOLLGATE_METRICS_TOKEN = "s3cret-metrics"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
