"""The resolutions feed: a durable, ordered list of resolutions for an agent's workflows, for
agents that cannot receive calls. Reading with ``after=N`` acknowledges everything up to N.
Workflow events (``audit.failed``, ``workflow.tripped``) travel in it too; verdicts an agent was
answered at once (``decision.made``, sent only by webhook) do not."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exceptions_app.models import Delivery, DeliveryStatus, ExceptionItem, FeedCursor, Principal, TargetKind

# Rows younger than this are held back: a transaction that took its id earlier may still be
# committing, and a reader that skipped past it would never see it.
VISIBILITY_LAG = timedelta(seconds=1)
MAX_PAGE = 500
# Item deliveries (resolutions, audit.failed) and workflow events; not decision.made, a webhook only.
FEED_ENTRIES = Q(item__isnull=False) | Q(item__isnull=True, payload__type="workflow.tripped")


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
            FEED_ENTRIES,
            workflow__in=principal.workflows.all(),
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
    acknowledged = Delivery.objects.filter(FEED_ENTRIES, workflow__in=principal.workflows.all(), pk__lte=up_to)
    ExceptionItem.objects.filter(deliveries__in=acknowledged, acknowledged_at__isnull=True).update(acknowledged_at=now)
    acknowledged.filter(kind=TargetKind.POLL, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.DELIVERED, delivered_at=now
    )
    ExceptionItem.objects.filter(
        deliveries__in=acknowledged.filter(kind=TargetKind.POLL), delivered_at__isnull=True
    ).update(delivered_at=now)
