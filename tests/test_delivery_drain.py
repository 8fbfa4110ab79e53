"""Batched delivery: one drain leases, sends and records many deliveries; wake-ups are deduplicated."""

import json
import threading

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings

from exceptions_app.models import Delivery, DeliveryAttempt, DeliveryStatus, ExceptionItem
from exceptions_app.services import deliveries, delivery_attempts
from exceptions_app.services.items import item_claim, item_resolve
from tests.fixtures.gate import hold
from tests.fixtures.workers import WORKER_ARGUMENTS, start_celery, stop, wait_for_line
from tests.test_delivery_flow import FAST, all_delivered, assert_exactly_once_per_delivery_id, resolve, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _held_and_resolved(agent_client, operator_client, receiver, count: int) -> list[int]:
    item_ids = [hold(agent_client, callback_url=receiver.url) for _ in range(count)]
    for item_id in item_ids:
        resolve(operator_client, item_id)
    return item_ids


def _broker_messages(queue: str) -> list[dict]:
    return [json.loads(raw) for raw in redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange(queue, 0, -1)]


def test_one_drain_delivers_every_due_resolution_in_batches(agent_client, operator_client, receiver):
    item_ids = _held_and_resolved(agent_client, operator_client, receiver, 2 * delivery_attempts.DRAIN_BATCH + 3)

    attempted = delivery_attempts.deliveries_drain()

    assert attempted == len(item_ids)
    assert all_delivered(item_ids)
    assert_exactly_once_per_delivery_id(receiver, item_ids)
    assert DeliveryAttempt.objects.filter(delivery__item_id__in=item_ids, number=1, status_code=200).count() == len(
        item_ids
    )
    assert not Delivery.objects.filter(item_id__in=item_ids).exclude(attempts=1).exists()
    assert not Delivery.objects.filter(item_id__in=item_ids, leased_until__isnull=False).exists()
    items = ExceptionItem.objects.filter(pk__in=item_ids)
    assert not items.filter(delivered_at__isnull=True).exists()
    assert not items.filter(acknowledged_at__isnull=True).exists()
    assert delivery_attempts.deliveries_drain() == 0  # nothing due any more: nothing sent twice


def test_a_failing_receiver_in_a_batch_retries_only_its_own_delivery(agent_client, operator_client, receiver):
    receiver.behaviour = lambda number: (503, {}, 0.0) if number == 2 else (200, {}, 0.0)
    item_ids = _held_and_resolved(agent_client, operator_client, receiver, 5)

    delivery_attempts.deliveries_drain()

    failed_id = receiver.received[1].headers["webhook-id"]
    failed = Delivery.objects.get(public_id=failed_id)
    assert failed.status == DeliveryStatus.PENDING
    assert failed.attempts == 1
    assert failed.next_attempt_at > failed.created_at  # backed off, for the sweep to wake a drain when due
    assert failed.attempt_log.get().status_code == 503
    others = Delivery.objects.filter(item_id__in=item_ids).exclude(pk=failed.pk)
    assert list(others.values_list("status", flat=True).distinct()) == [DeliveryStatus.DELIVERED]


def test_a_burst_of_resolutions_publishes_one_wake_up_not_one_per_resolution(agent_client, operator_client, receiver):
    cache.delete(deliveries.WAKE_KEY)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("deliveries")

    _held_and_resolved(agent_client, operator_client, receiver, 6)

    tasks = [message["headers"]["task"] for message in _broker_messages("deliveries")]
    assert tasks == ["exceptions_app.tasks.delivery.deliveries_drain"]


def test_a_drain_that_started_lets_the_next_resolution_wake_another(agent_client, operator_client, receiver):
    cache.delete(deliveries.WAKE_KEY)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("deliveries")
    _held_and_resolved(agent_client, operator_client, receiver, 1)

    delivery_attempts.deliveries_drain()  # as a worker would: it clears the flag first
    late = _held_and_resolved(agent_client, operator_client, receiver, 1)

    assert len(_broker_messages("deliveries")) == 2
    assert delivery_attempts.deliveries_drain() == 1
    assert all_delivered(late)


@pytest.mark.worker
def test_a_real_worker_delivers_a_burst_with_a_few_drains(agent_client, operator_client, receiver, test_database_url):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = start_celery(test_database_url, *WORKER_ARGUMENTS, "--pool", "solo", "--hostname", "drainer@%h", **FAST)
    log: list[str] = []
    try:
        wait_for_line(worker, "ready.")
        threading.Thread(target=lambda: log.extend(worker.stdout), daemon=True).start()
        item_ids = [hold(agent_client, callback_url=receiver.url) for _ in range(40)]
        principal = operator_client.principal
        with transaction.atomic():  # one commit: forty deliveries due at once
            for item_id in item_ids:
                item_claim(item_id=item_id, principal=principal)
                item_resolve(item_id=item_id, principal=principal, action="approve")

        wait_until(lambda: all_delivered(item_ids), timeout=30)
    finally:
        stop(worker)
    assert_exactly_once_per_delivery_id(receiver, item_ids)
    drains = [line for line in log if "tasks.delivery.deliveries_drain[" in line and "succeeded" in line]
    assert 1 <= len(drains) <= 4, drains


def _broker_pools_reset(app) -> None:
    """Drop the app's connection and producer pools, so the next publish connects to ``broker_url`` anew."""
    from kombu import pools

    pools.reset()  # kombu's process-wide producer pools, keyed by connection
    app._pool = None
    app.amqp._producer_pool = None


def test_a_wake_up_the_broker_refused_leaves_no_flag_that_would_silence_the_sweep(agent_client, receiver):
    """The broker down (here: a port nothing listens on) while the cache answers: the failed publish must
    not leave the flag set, or the sweep could not ask again until it expired after the broker returned."""
    from exceptions_app.celery import app

    cache.delete(deliveries.WAKE_KEY)
    original, options = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport_options = {**options, "max_retries": 0}
    _broker_pools_reset(app)
    try:
        with override_settings(CELERY_TASK_PUBLISH_RETRY=False):
            app.conf.task_publish_retry = False
            deliveries.deliveries_wake()
        assert cache.get(deliveries.WAKE_KEY) is None
    finally:
        app.conf.task_publish_retry = True
        app.conf.broker_url, app.conf.broker_transport_options = original, options
        _broker_pools_reset(app)

    deliveries.deliveries_wake()  # the broker back: the next wake-up publishes and sets the flag
    assert cache.get(deliveries.WAKE_KEY) == 1


def test_the_sweep_wakes_one_drain_when_something_is_due_and_none_otherwise(agent_client, operator_client, receiver):
    receiver.behaviour = lambda number: (503, {}, 0.0)
    _held_and_resolved(agent_client, operator_client, receiver, 3)
    delivery_attempts.deliveries_drain()  # all three fail and back off: nothing is due now
    cache.delete(deliveries.WAKE_KEY)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("deliveries")

    assert deliveries.deliveries_sweep() is False
    assert _broker_messages("deliveries") == []

    Delivery.objects.update(next_attempt_at=Delivery.objects.values("created_at")[:1])  # their backoff ended
    assert deliveries.deliveries_sweep() is True
    assert deliveries.deliveries_sweep() is True  # still due, but a drain is already wanted

    tasks = [message["headers"]["task"] for message in _broker_messages("deliveries")]
    assert tasks == ["exceptions_app.tasks.delivery.deliveries_drain"]


def test_a_dead_letter_is_audited_on_its_item_in_the_same_batch_as_a_success(agent_client, operator_client, receiver):
    receiver.behaviour = lambda number: (410, {}, 0.0) if number == 1 else (200, {}, 0.0)  # 410: stop sending
    item_ids = _held_and_resolved(agent_client, operator_client, receiver, 2)

    assert delivery_attempts.deliveries_drain() == 2

    dead = Delivery.objects.get(public_id=receiver.received[0].headers["webhook-id"])
    assert (dead.status, dead.attempts, dead.leased_until) == (DeliveryStatus.DEAD, 1, None)
    assert dead.item.events.filter(action="delivery_dead").count() == 1
    delivered = Delivery.objects.filter(item_id__in=item_ids).exclude(pk=dead.pk).get()
    assert (delivered.status, delivered.attempts) == (DeliveryStatus.DELIVERED, 1)
