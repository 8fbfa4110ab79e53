"""Undo of a decision made in the console, for a few seconds after it.

A console resolution's outbox rows are written not due until the undo window has passed
(``TOLLGATE_UNDO_SECONDS``), so no worker sends them before then. Undoing inside the window deletes
those unsent rows and gives the item back to its resolver, claimed, in one transaction with an
audit event; once a row is due or was attempted, the decision has left and undo is refused.

Agents that read for themselves are held back the same way, so an undone decision never reached
anyone: while the rows are held, an agent reading the item sees it still claimed by the person who
decided (api/presenters.py), the resolutions feed stops before the held entry (services/feed.py),
and an agent waiting on either is woken again the moment the hold ends (waits/views.py ``NotYet``).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exceptions_app.errors import IllegalTransition, NotFound
from exceptions_app.models import Delivery, ExceptionItem, ItemKind, ItemStatus, Principal, Vote
from exceptions_app.services.deliveries import deliveries_held_filter
from exceptions_app.services.item_changes import item_state_change
from exceptions_app.services.judgements import breaker_observation_withdraw

UNDOABLE = ("approve", "modify", "reject")


def undo_window() -> timedelta:
    return timedelta(seconds=settings.TOLLGATE_UNDO_SECONDS)


def undo_deadline(item: ExceptionItem) -> datetime | None:
    """Until when the item's resolution can still be undone, or None if it cannot be."""
    if item.status != ItemStatus.RESOLVED or item.resolution not in UNDOABLE or item.resolved_at is None:
        return None
    if item.kind == ItemKind.AUDIT:  # an audit judgement feeds the drift breaker at once: it stands
        return None
    return item.resolved_at + undo_window()


def item_resolution_undo(*, item_id: int, principal: Principal) -> ExceptionItem:
    """Take back the resolution this person made moments ago: the item is theirs again, claimed
    under a fresh lease, and nothing was sent."""
    user = principal.user
    with transaction.atomic():
        item = ExceptionItem.objects.select_for_update(of=("self",)).filter(pk=item_id).first()
        if item is None:
            raise NotFound(f"no exception item {item_id}")
        now = timezone.now()
        deadline = undo_deadline(item)
        if deadline is None or item.resolved_by_id != user.pk:
            raise IllegalTransition(f"item {item_id} has no decision of yours to undo")
        deliveries = list(Delivery.objects.select_for_update().filter(item=item))
        released = Delivery.objects.filter(item=item).exclude(deliveries_held_filter(now)).exists()
        if now >= deadline or released:
            raise IllegalTransition(f"the decision on item {item_id} has already been sent; it can no longer be undone")
        undone = {"resolution": item.resolution, "reason_code": item.reason_code, "note": item.resolution_note}
        Delivery.objects.filter(pk__in=[delivery.pk for delivery in deliveries]).delete()
        breaker_observation_withdraw(item=item)
        Vote.objects.filter(item=item, voter=user).delete()  # the deciding vote goes with the decision
        item_state_change(
            item,
            action="resolution_undone",
            actor=user,
            changes={
                "status": ItemStatus.CLAIMED,
                "resolution": "",
                "final_output": None,
                "reason_code": "",
                "resolution_note": "",
                "resolved_by": None,
                "resolved_at": None,
                "claimed_by": user,
                "claimed_at": now,
                "claim_expires_at": now + timedelta(seconds=settings.TOLLGATE_CLAIM_LEASE_SECONDS),
            },
            payload={**undone, "deliveries_withdrawn": [delivery.public_id for delivery in deliveries]},
            now=now,
        )
    return item


def resolutions_held_until(items: Iterable[ExceptionItem], *, now: datetime) -> dict[int, datetime]:
    """Of ``items``, those whose resolution has not left yet because it may still be undone, with the
    moment it stands. One query, and none unless an item was resolved within the window."""
    since = now - undo_window()
    recent = [
        item.pk
        for item in items
        if item.status == ItemStatus.RESOLVED and item.resolved_at is not None and item.resolved_at > since
    ]
    if not recent:
        return {}
    held: dict[int, datetime] = {}
    rows = Delivery.objects.filter(deliveries_held_filter(now), item_id__in=recent)
    for item_id, until in rows.values_list("item_id", "next_attempt_at"):
        held[item_id] = max(until, held.get(item_id, until))
    return held
