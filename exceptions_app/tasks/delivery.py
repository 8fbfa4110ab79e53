"""Delivery tasks. ``deliver`` is idempotent (a database lease guards each attempt), so it is
acknowledged late and requeued if its worker dies."""

from celery import shared_task
from django.conf import settings

from exceptions_app.services import deliveries


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, time_limit=60, soft_time_limit=50)
def deliver(delivery_pk: int) -> str:
    return deliveries.delivery_attempt(delivery_pk=delivery_pk)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def deliveries_sweep() -> int:
    due = deliveries.deliveries_due()
    # A message still waiting when the row may be re-published is stale: let the broker drop it.
    expires = settings.TOLLGATE_DELIVERY_REQUEUE_SECONDS
    for pk in due:
        deliver.apply_async((pk,), expires=expires)
    return len(due)
