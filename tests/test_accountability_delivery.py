"""A wrong unattended output reaches the workflow as ``audit.failed`` through a real worker, once."""

import time

import pytest

from exceptions_app.delivery.signing import signature_verify
from exceptions_app.models import Delivery, DeliveryStatus, ExceptionItem, ItemKind, PolicySource, Workflow
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import BILLING, billing_document, decision_body, hold

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _resolve(client, item_id: int, action: str) -> None:
    assert client.post(f"/api/v1/exceptions/{item_id}/claim").status_code == 200
    body = {"action": action, **({"reason_code": "wrong_amount"} if action == "reject" else {})}
    assert client.post(f"/api/v1/exceptions/{item_id}/resolve", body, format="json").status_code == 200


def test_audit_failed_is_delivered_exactly_once_by_signed_webhook(
    agent_client, operator_client, receiver, celery_worker
):
    policy_publish(document=billing_document(sampling={"proceed_rate": 1.0}), source=PolicySource.FILE)
    answer = agent_client.post(
        "/api/v1/decisions", decision_body(callback_url=receiver.url, correlation_id="ran-1"), format="json"
    ).json()
    assert answer["verdict"] == "proceed"
    receiver.wait_for(lambda r: len(r.received) == 1, timeout=15)  # the decision.made the agent asked for
    audit = ExceptionItem.objects.get(kind=ItemKind.AUDIT)

    _resolve(operator_client, audit.pk, "reject")
    _resolve(operator_client, hold(agent_client, correlation_id="held", callback_url=receiver.url), "approve")

    receiver.wait_for(lambda r: len(r.received) == 3, timeout=20)
    time.sleep(2)  # any duplicate would arrive now
    types = sorted(message.json["type"] for message in receiver.received)
    assert types == ["audit.failed", "decision.made", "exception.resolved"]
    failed = next(message for message in receiver.received if message.json["type"] == "audit.failed")
    assert failed.json["item_id"] == audit.pk
    assert failed.json["correlation_id"] == "ran-1"
    assert failed.json["verdict"] == "proceed"
    assert failed.json["judgement"] == "reject"
    secret = Workflow.objects.get(name=BILLING).webhook_secret
    assert signature_verify(secret=secret, headers=failed.headers, body=failed.body)
    delivery = Delivery.objects.get(payload__type="audit.failed")
    assert delivery.status == DeliveryStatus.DELIVERED
    assert receiver.delivery_ids().count(delivery.public_id) == 1
