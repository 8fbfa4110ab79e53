from django.utils import timezone

from exceptions_app.db_fast_paths import unsaved_instance
from exceptions_app.models import AuditEvent


def audit_event_build(
    *,
    action: str,
    actor,
    actor_label: str | None = None,
    item=None,
    workflow=None,
    from_status: str = "",
    to_status: str = "",
    payload: dict | None = None,
    at=None,
) -> AuditEvent:
    """An unsaved audit event, for callers that insert many at once."""
    return unsaved_instance(
        AuditEvent,
        item=item,
        # The id, not the object: reading item.workflow would cost a query on every transition.
        workflow_id=workflow.pk if workflow is not None else getattr(item, "workflow_id", None),
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor is not None else "system"),
        payload=payload or {},
        created_at=at or timezone.now(),
    )


def audit_record(**kwargs) -> AuditEvent:
    """Write one audit event; call inside the transaction of the change it records."""
    event = audit_event_build(**kwargs)
    event.save(force_insert=True)
    return event
