"""The resolutions feed: a durable, ordered list of resolutions for an agent's workflows, for
agents that cannot receive calls. Reading with ``after=N`` acknowledges everything up to N.
Workflow events (``audit.failed``, ``workflow.tripped``) travel in it too; verdicts an agent was
answered at once (``decision.made``, sent only by webhook) do not."""

from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exceptions_app.models import Delivery, DeliveryStatus, ExceptionItem, FeedCursor, Principal, TargetKind
from exceptions_app.services.deliveries import deliveries_held_filter

# Rows younger than this are held back: a transaction that took its id earlier may still be
# committing, and a reader that skipped past it would never see it.
VISIBILITY_LAG = timedelta(seconds=1)
MAX_PAGE = 500
# Item deliveries (resolutions, audit.failed) and workflow events; not decision.made, a webhook only.
FEED_ENTRIES = Q(item__isnull=False) | Q(item__isnull=True, payload__type="workflow.tripped")


class FeedPage(NamedTuple):
    entries: list[dict]
    cursor: int
    # When the page stops before an entry held in its undo window: the moment it may be read.
    held_until: datetime | None


def feed_read(*, principal: Principal, after: int | None, limit: int) -> FeedPage:
    """Resolutions after ``after`` (or the stored cursor) and the new cursor. Moving ``after``
    forward acknowledges the earlier entries: their items are marked acknowledged, and poll
    deliveries delivered.

    A console decision's entry is held while it may be undone (services/undo.py): the page stops
    before it, so the cursor never passes it, and later entries wait behind it (at most the undo
    window); an undone decision's entry is deleted and never read."""
    now = timezone.now()
    with transaction.atomic():
        cursor, _ = FeedCursor.objects.select_for_update().get_or_create(principal=principal)
        position = cursor.position if after is None else after
        if position > cursor.position:
            _acknowledge(principal, after=cursor.position, up_to=position, now=now)
            cursor.position = position
            cursor.save(update_fields=["position", "updated_at"])
    ahead = Delivery.objects.filter(FEED_ENTRIES, workflow__in=principal.workflows.all(), pk__gt=position)
    first_held = ahead.filter(deliveries_held_filter(now)).order_by("pk").values("pk", "next_attempt_at").first()
    shown = ahead.filter(created_at__lte=now - VISIBILITY_LAG)
    if first_held is not None:
        shown = shown.filter(pk__lt=first_held["pk"])
    entries = list(shown.order_by("pk").values("pk", "payload")[: min(limit, MAX_PAGE)])
    return FeedPage(
        [{"cursor": entry["pk"], **entry["payload"]} for entry in entries],
        entries[-1]["pk"] if entries else position,
        first_held["next_attempt_at"] if first_held is not None else None,
    )


def _acknowledge(principal: Principal, *, after: int, up_to: int, now) -> None:
    """Stamp the entries between the old cursor and the new one. Agents of one workflow acknowledge
    the same rows: each locks them in one order and skips rows another is stamping at that moment
    (the first acknowledgement is the one kept), so two of them never deadlock."""
    acknowledged = Delivery.objects.filter(
        FEED_ENTRIES, workflow__in=principal.workflows.all(), pk__gt=after, pk__lte=up_to
    )
    _stamp(ExceptionItem.objects.filter(deliveries__in=acknowledged, acknowledged_at__isnull=True), acknowledged_at=now)
    polled = acknowledged.filter(kind=TargetKind.POLL)
    _stamp(polled.filter(status=DeliveryStatus.PENDING), status=DeliveryStatus.DELIVERED, delivered_at=now)
    _stamp(ExceptionItem.objects.filter(deliveries__in=polled, delivered_at__isnull=True), delivered_at=now)


def _stamp(rows, **changes) -> None:
    locked = rows.model.objects.filter(
        pk__in=list(rows.order_by("pk").select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True))
    )
    locked.update(**changes)
