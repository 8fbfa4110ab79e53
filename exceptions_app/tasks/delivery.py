"""Delivery tasks. The drain is idempotent (a database lease guards each attempt), so it is
acknowledged late and requeued if its worker dies. A commit that records a delivery wakes a drain;
the beat sweep wakes one whenever something is due (retries, lost wake-ups)."""

from celery import shared_task

from exceptions_app.services import deliveries, delivery_attempts


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, time_limit=120, soft_time_limit=100)
def deliveries_drain() -> int:
    return delivery_attempts.deliveries_drain()


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def deliveries_sweep() -> bool:
    return deliveries.deliveries_sweep()
