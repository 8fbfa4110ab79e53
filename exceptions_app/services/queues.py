from django.db import transaction

from exceptions_app.errors import InvalidInput
from exceptions_app.models import Queue, Team
from exceptions_app.services.audit import audit_record

PRIORITY_WEIGHT_KEYS = frozenset({"severity", "value_at_risk", "rules"})


def queue_configure(
    *,
    name: str,
    actor,
    sla_seconds: int | None = None,
    escalation_queue: str | None = None,
    teams: list[str] | None = None,
    priority_weights: dict | None = None,
) -> tuple[Queue, bool]:
    """Create or update a queue; only the given settings change. Audited with the changes."""
    if priority_weights is not None:
        unknown = set(priority_weights) - PRIORITY_WEIGHT_KEYS
        if unknown:
            raise InvalidInput(
                "unknown priority weight",
                fields=[{"path": f"priority_weights.{key}", "message": "unknown weight"} for key in sorted(unknown)],
            )
    with transaction.atomic():
        queue, created = Queue.objects.select_for_update().get_or_create(name=name)
        changes: dict = {}
        if sla_seconds is not None:
            queue.sla_seconds = changes["sla_seconds"] = sla_seconds
        if escalation_queue is not None:
            if escalation_queue == name:
                raise InvalidInput(
                    "a queue cannot escalate to itself",
                    fields=[{"path": "escalation_queue", "message": "must differ from the queue"}],
                )
            target = Queue.objects.filter(name=escalation_queue).first() if escalation_queue else None
            if escalation_queue and target is None:
                raise InvalidInput(
                    f"no queue {escalation_queue!r}", fields=[{"path": "escalation_queue", "message": "unknown queue"}]
                )
            queue.escalation_queue = target
            changes["escalation_queue"] = escalation_queue or None
        if priority_weights is not None:
            queue.priority_weights = changes["priority_weights"] = priority_weights
        queue.save()
        if teams is not None:
            queue.teams.set([Team.objects.get_or_create(name=team)[0] for team in teams])
            changes["teams"] = sorted(teams)
        audit_record(action="queue_configured", actor=actor, payload={"queue": name, "created": created, **changes})
    return queue, created
