"""The same Idempotency-Key from the same agent returns the first result and creates nothing new."""

import threading

import pytest
from django.db import connection

from exceptions_app.models import ExceptionItem, GateDecision
from exceptions_app.services import intake
from tests.fixtures.gate import client_for, decision_body

URL = "/api/v1/decisions"


@pytest.mark.django_db
def test_a_retry_with_the_same_key_returns_the_first_result(agent_client):
    first = agent_client.post(URL, decision_body(confidence=0.5), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = agent_client.post(URL, decision_body(confidence=0.5), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["decision_id"] == first.json()["decision_id"]
    assert second.json()["exception"]["id"] == first.json()["exception"]["id"]
    assert GateDecision.objects.count() == 1
    assert ExceptionItem.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_a_different_body_is_409_and_writes_nothing(agent_client):
    agent_client.post(URL, decision_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    response = agent_client.post(URL, decision_body(confidence=0.3), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert GateDecision.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_per_agent(agent_client):
    other = client_for("billing-bot-2", "agent", workflows=["billing.invoice_adjustment"])

    first = agent_client.post(URL, decision_body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    second = other.post(URL, decision_body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert first.json()["decision_id"] != second.json()["decision_id"]
    assert GateDecision.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_record_one_decision(agent_client):
    threads_count = 12
    barrier = threading.Barrier(threads_count)
    answers: list = []
    errors: list = []

    def retry():
        try:
            barrier.wait(timeout=10)
            response = agent_client.post(URL, decision_body(confidence=0.4), format="json", HTTP_IDEMPOTENCY_KEY="race")
            answers.append((response.status_code, response.json()))
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert len(answers) == threads_count
    assert {status for status, _ in answers} == {200}
    assert len({body["decision_id"] for _, body in answers}) == 1
    assert len({body["exception"]["id"] for _, body in answers}) == 1
    assert GateDecision.objects.count() == 1
    assert ExceptionItem.objects.count() == 1


@pytest.mark.django_db
def test_a_retry_of_a_decision_fingerprinted_before_the_upgrade_replays(agent_client):
    # Rows written before the fingerprint was taken with orjson hold the json module's digest, which differs
    # for non-ASCII text; a retry across the upgrade is the same request and must replay, not conflict.
    body = decision_body(confidence=0.5, correlation_id="café-1")
    first = agent_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-upgrade")
    decision = GateDecision.objects.get(pk=first.json()["decision_id"])
    request = intake.DecisionRequest(**body)
    legacy = intake._fingerprint_before_orjson(intake._fingerprint_body(request))
    assert legacy != decision.request_fingerprint
    GateDecision.objects.filter(pk=decision.pk).update(request_fingerprint=legacy)

    second = agent_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-upgrade")
    changed = agent_client.post(URL, {**body, "confidence": 0.4}, format="json", HTTP_IDEMPOTENCY_KEY="k-upgrade")

    assert second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert changed.status_code == 409
