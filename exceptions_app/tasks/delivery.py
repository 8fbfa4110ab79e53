"""Delivery tasks. Both are idempotent (a database lease guards each attempt), so they are
acknowledged late and requeued if their worker dies. ``deliveries_drain`` is the wake-up after a
commit; ``deliver`` attempts one row, for the sweep (retries, lost wake-ups)."""

from celery import shared_task
from django.conf import settings

from exceptions_app.services import deliveries, delivery_drain


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, time_limit=60, soft_time_limit=50)
def deliver(delivery_pk: int) -> str:
    return deliveries.delivery_attempt(delivery_pk=delivery_pk)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, time_limit=120, soft_time_limit=100)
def deliveries_drain() -> int:
    return delivery_drain.deliveries_drain()


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def deliveries_sweep() -> int:
    due = deliveries.deliveries_due()
    # A message still waiting when the row may be re-published is stale: let the broker drop it.
    expires = settings.TOLLGATE_DELIVERY_REQUEUE_SECONDS
    for pk in due:
        deliver.apply_async((pk,), expires=expires)
    return len(due)
