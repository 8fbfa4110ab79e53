"""Resolutions reach the waiting workflow through real workers, real Redis and a real HTTP receiver.

Each fault test ends with every resolution delivered exactly once per delivery id at the receiver.
"""

import os
import signal
import subprocess
import time

import pytest
from kombu import Connection

from exceptions_app.delivery.signing import signature_verify
from exceptions_app.models import AuditEvent, Delivery, DeliveryStatus, ExceptionItem, Workflow
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import BILLING, billing_document, decision_body, hold

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
FAST = {
    "TOLLGATE_DELIVERY_TIMEOUT_SECONDS": "3",
    "TOLLGATE_DELIVERY_BACKOFF_SECONDS": "1",
    "TOLLGATE_DELIVERY_BACKOFF_MAX_SECONDS": "1",
    "TOLLGATE_DELIVERY_SWEEP_SECONDS": "1",
    "TOLLGATE_DELIVERY_REQUEUE_SECONDS": "2",
    "TOLLGATE_SWEEP_SECONDS": "3600",
    "TOLLGATE_HEARTBEAT_SECONDS": "3600",
}


def wait_until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def resolve(operator_client, item_id: int, action: str = "approve") -> None:
    assert operator_client.post(f"/api/v1/exceptions/{item_id}/claim").status_code == 200
    body = {"action": action, **({"reason_code": "wrong_amount"} if action == "reject" else {})}
    response = operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", body, format="json")
    assert response.status_code == 200, response.json()


def all_delivered(item_ids) -> bool:
    return Delivery.objects.filter(item_id__in=item_ids, status=DeliveryStatus.DELIVERED).count() == len(item_ids)


def assert_exactly_once_per_delivery_id(receiver, item_ids) -> None:
    expected = set(Delivery.objects.filter(item_id__in=item_ids).values_list("public_id", flat=True))
    assert len(expected) == len(item_ids)
    assert set(receiver.delivery_ids()) == expected
    # Per delivery id, the receiver saw one successful (2xx) answer: that is "exactly once" for it.
    for delivery in Delivery.objects.filter(item_id__in=item_ids):
        assert delivery.attempt_log.filter(outcome="delivered").count() == 1


def test_a_resolution_reaches_the_webhook_signed(agent_client, operator_client, receiver, celery_worker):
    item_id = hold(agent_client, callback_url=receiver.url, correlation_id="run-7")

    resolve(operator_client, item_id)
    receiver.wait_for(lambda r: len(r.received) == 1, timeout=15)

    delivered = receiver.received[0]
    secret = Workflow.objects.get(name=BILLING).webhook_secret
    payload = signature_verify(secret=secret, body=delivered.body, headers=delivered.headers)
    assert (payload["item_id"], payload["verdict"], payload["correlation_id"]) == (item_id, "approve", "run-7")
    assert payload["resolver"] == "olga"
    assert payload["final_output"]["invoice_id"] == "INV-1001"
    assert payload["delivery_id"] == delivered.headers["webhook-id"]
    item = wait_until(lambda: ExceptionItem.objects.filter(pk=item_id, acknowledged_at__isnull=False).first())
    assert item.delivered_at >= item.resolved_at
    assert Delivery.objects.get(item_id=item_id).attempts == 1


def test_a_gate_verdict_reaches_the_agent_that_asked_for_a_callback(agent_client, receiver, celery_worker):
    response = agent_client.post("/api/v1/decisions", decision_body(callback_url=receiver.url), format="json")

    receiver.wait_for(lambda r: len(r.received) == 1, timeout=15)
    payload = receiver.received[0].json
    assert (payload["type"], payload["verdict"]) == ("decision.made", "proceed")
    assert payload["decision_id"] == response.json()["decision_id"]


def test_a_failing_receiver_is_retried_until_it_recovers(
    agent_client, operator_client, receiver, worker_factory, tmp_path
):
    receiver.behaviour = lambda number: (500, {}, 0.0) if number <= 3 else (200, {}, 0.0)
    start_worker, start_beat = worker_factory
    start_worker("retry", **FAST)
    start_beat(str(tmp_path / "beat"), **FAST)
    item_id = hold(agent_client, callback_url=receiver.url)

    resolve(operator_client, item_id)

    wait_until(lambda: all_delivered([item_id]), timeout=40)
    delivery = Delivery.objects.get(item_id=item_id)
    assert delivery.attempts == 4
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [500, 500, 500, 200]
    assert_exactly_once_per_delivery_id(receiver, [item_id])


def test_a_receiver_down_past_the_budget_dead_letters_then_bulk_redelivery_succeeds(
    agent_client, operator_client, supervisor_client, receiver, worker_factory, tmp_path
):
    healthy = {"value": False}
    receiver.behaviour = lambda number: (200, {}, 0.0) if healthy["value"] else (503, {}, 0.0)
    start_worker, start_beat = worker_factory
    start_worker("dead", TOLLGATE_DELIVERY_MAX_ATTEMPTS="2", **FAST)
    start_beat(str(tmp_path / "beat"), **FAST)
    item_ids = [hold(agent_client, callback_url=receiver.url) for _ in range(3)]
    for item_id in item_ids:
        resolve(operator_client, item_id, action="reject")

    wait_until(lambda: Delivery.objects.filter(item_id__in=item_ids, status=DeliveryStatus.DEAD).count() == 3)
    dead = supervisor_client.get("/api/v1/deliveries", {"status": "dead"}).json()
    assert {row["item_id"] for row in dead} == set(item_ids)
    assert all([attempt["status_code"] for attempt in row["attempt_log"]] == [503, 503] for row in dead)
    assert all(row["last_error"].startswith("retry budget spent") for row in dead)

    healthy["value"] = True
    response = supervisor_client.post(
        "/api/v1/deliveries/redeliver", {"delivery_ids": [row["delivery_id"] for row in dead]}, format="json"
    )

    assert response.json() == {"requeued": 3}
    wait_until(lambda: all_delivered(item_ids), timeout=30)
    assert_exactly_once_per_delivery_id(receiver, item_ids)
    assert AuditEvent.objects.filter(action="redelivery_requested", item_id__in=item_ids).count() == 3


def test_a_worker_killed_mid_delivery_loses_nothing(agent_client, operator_client, receiver, worker_factory, tmp_path):
    first_seen: set[str] = set()

    def slow_first_attempt(number: int):
        webhook_id = receiver.received[number - 1].headers["webhook-id"]
        if webhook_id not in first_seen:
            first_seen.add(webhook_id)
            return 200, {}, 2.5  # the worker is killed while it waits for this answer
        return 200, {}, 0.0

    receiver.behaviour = slow_first_attempt
    start_worker, start_beat = worker_factory
    start_beat(str(tmp_path / "beat"), **FAST)
    item_ids = []
    for round_number in range(3):
        worker = start_worker(f"doomed{round_number}", **FAST)
        item_id = hold(agent_client, callback_url=receiver.url)
        item_ids.append(item_id)
        resolve(operator_client, item_id)
        receiver.wait_for(lambda r, count=round_number + 1: len(first_seen) == count, timeout=20)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    start_worker("survivor", **FAST)

    wait_until(lambda: all_delivered(item_ids), timeout=60)
    assert_exactly_once_per_delivery_id(receiver, item_ids)
    assert len(receiver.received) >= 2 * len(item_ids)  # each was sent again after its worker died


def test_a_redis_restart_with_deliveries_pending_loses_nothing(
    agent_client, operator_client, receiver, worker_factory, tmp_path
):
    port = 6399
    redis_command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    broker = subprocess.Popen(redis_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        healthy = {"value": False}
        receiver.behaviour = lambda number: (200, {}, 0.0) if healthy["value"] else (503, {}, 0.0)
        private = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", **FAST}
        start_worker, start_beat = worker_factory
        start_worker("restart", **private)
        start_beat(str(tmp_path / "beat"), **private)
        item_ids = [hold(agent_client, callback_url=receiver.url) for _ in range(4)]
        for item_id in item_ids:
            resolve(operator_client, item_id)
        wait_until(lambda: Delivery.objects.filter(item_id__in=item_ids, attempts__gte=1).count() == 4)

        broker.kill()
        broker.wait(timeout=10)
        time.sleep(1)
        broker = subprocess.Popen(redis_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        healthy["value"] = True

        wait_until(lambda: all_delivered(item_ids), timeout=60)
        assert_exactly_once_per_delivery_id(receiver, item_ids)
    finally:
        broker.kill()
        broker.wait(timeout=10)


def test_a_celery_workflow_receives_its_resolution_as_a_task(agent_client, operator_client, celery_worker):
    document = billing_document(callback_task="agent.resume_invoice", callback_queue="agent-callbacks")
    policy_publish(document=document, source="api")
    item_id = hold(agent_client)

    resolve(operator_client, item_id)

    with Connection(os.environ["REDIS_URL"]) as connection:
        queue = connection.SimpleQueue("agent-callbacks")
        message = queue.get(timeout=15)
        message.ack()
        queue.close()
    assert message.headers["task"] == "agent.resume_invoice"
    args = message.payload[0]
    assert (args[0]["item_id"], args[0]["verdict"]) == (item_id, "approve")
    assert message.headers["id"] == Delivery.objects.get(item_id=item_id).public_id
