"""Lifecycle of an exception item: each transition one transaction and one audit event."""

from django.db import transaction
from django.utils import timezone

from exceptions_app.errors import IllegalTransition, NotFound
from exceptions_app.models import TERMINAL_STATUSES, ExceptionItem, ItemStatus
from exceptions_app.services.audit import audit_record


def item_cancel(*, item_id: int, actor, reason: str = "") -> ExceptionItem:
    """The agent withdraws an item that is not yet resolved, cancelled or expired."""
    with transaction.atomic():
        item = ExceptionItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None:
            raise NotFound(f"no exception item {item_id}")
        if item.status in TERMINAL_STATUSES:
            raise IllegalTransition(f"item {item_id} is {item.status} and can no longer be cancelled")
        previous = item.status
        now = timezone.now()
        item.status = ItemStatus.CANCELLED
        item.claimed_by = None
        item.claim_expires_at = None
        item.updated_at = now
        item.save(update_fields=["status", "claimed_by", "claim_expires_at", "updated_at"])
        audit_record(
            action="cancelled",
            actor=actor,
            item=item,
            from_status=previous,
            to_status=ItemStatus.CANCELLED,
            payload={"reason": reason} if reason else {},
            at=now,
        )
    return item
