"""The resolutions feed: a durable, ordered list of resolutions for an agent's workflows, for
agents that cannot receive calls. Reading with ``after=N`` acknowledges everything up to N."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from exceptions_app.models import Delivery, DeliveryStatus, ExceptionItem, FeedCursor, Principal, TargetKind

# Rows younger than this are held back: a transaction that took its id earlier may still be
# committing, and a reader that skipped past it would never see it.
VISIBILITY_LAG = timedelta(seconds=1)
MAX_PAGE = 500


def feed_read(*, principal: Principal, after: int | None, limit: int) -> tuple[list[dict], int]:
    """Resolutions after ``after`` (or the stored cursor) and the new cursor. Moving ``after``
    forward acknowledges the earlier entries: their items are marked acknowledged, and poll
    deliveries delivered."""
    now = timezone.now()
    with transaction.atomic():
        cursor, _ = FeedCursor.objects.select_for_update().get_or_create(principal=principal)
        position = cursor.position if after is None else after
        if position > cursor.position:
            _acknowledge(principal, up_to=position, now=now)
            cursor.position = position
            cursor.save(update_fields=["position", "updated_at"])
    entries = list(
        Delivery.objects.filter(
            workflow__in=principal.workflows.all(),
            item__isnull=False,
            pk__gt=position,
            created_at__lte=now - VISIBILITY_LAG,
        )
        .order_by("pk")
        .values("pk", "payload")[: min(limit, MAX_PAGE)]
    )
    return [{"cursor": entry["pk"], **entry["payload"]} for entry in entries], (
        entries[-1]["pk"] if entries else position
    )


def _acknowledge(principal: Principal, *, up_to: int, now) -> None:
    acknowledged = Delivery.objects.filter(workflow__in=principal.workflows.all(), item__isnull=False, pk__lte=up_to)
    ExceptionItem.objects.filter(deliveries__in=acknowledged, acknowledged_at__isnull=True).update(acknowledged_at=now)
    acknowledged.filter(kind=TargetKind.POLL, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.DELIVERED, delivered_at=now
    )
    ExceptionItem.objects.filter(
        deliveries__in=acknowledged.filter(kind=TargetKind.POLL), delivered_at__isnull=True
    ).update(delivered_at=now)
