"""The one way an item changes state: set the changes, stamp the time, write the audit event.

Like pretix's ``log_action``, a transition is one call. ``update_fields`` is derived from the
changes, so a field set but not saved (or saved but not audited) cannot happen by hand any more.
"""

from datetime import datetime

from django.utils import timezone

from exceptions_app.models import AuditEvent, ExceptionItem
from exceptions_app.services.audit import audit_event_build

# Every way out of ``claimed`` drops the whole claim: holder, start and lease end together.
CLAIM_CLEARED = {"claimed_by": None, "claimed_at": None, "claim_expires_at": None}


def item_state_change_build(
    item: ExceptionItem,
    *,
    action: str,
    actor,
    changes: dict,
    payload: dict | None = None,
    now: datetime,
) -> AuditEvent:
    """Apply ``changes`` to the item in memory, stamp ``updated_at`` and return the unsaved audit
    event (from the status before to the status after). For sweeps that save items in batches."""
    from_status = item.status
    for name, value in changes.items():
        setattr(item, name, value)
    item.updated_at = now
    return audit_event_build(
        action=action,
        actor=actor,
        item=item,
        from_status=from_status,
        to_status=item.status,
        payload=payload,
        at=now,
    )


def item_state_change(
    item: ExceptionItem,
    *,
    action: str,
    actor,
    changes: dict,
    payload: dict | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Change one item and audit it; call inside the transaction that locked the item."""
    event = item_state_change_build(
        item, action=action, actor=actor, changes=changes, payload=payload, now=now or timezone.now()
    )
    item.save(update_fields=[*changes, "updated_at"])
    event.save(force_insert=True)
    return event
