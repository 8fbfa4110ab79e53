"""Rows to response dicts, by hand on the hot path (shapes declared in serializers.py)."""

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from exceptions_app.interrupts import item_human_response
from exceptions_app.models import ExceptionItem, GateDecision, Principal, Role
from exceptions_app.rules import iso_timestamp
from exceptions_app.services.undo import resolutions_held_until


def resolutions_hidden_from(principal: Principal | None, items: Sequence[ExceptionItem]) -> dict[int, datetime]:
    """Items whose resolution an agent may not see yet, with until when: a console decision that may
    still be undone (services/undo.py). People see what was decided at once."""
    if principal is None or principal.role != Role.AGENT:
        return {}
    return resolutions_held_until(items, now=timezone.now())


def items_present_to(principal: Principal | None, items: Sequence[ExceptionItem], *, captured: bool = False) -> list:
    """The items as ``principal`` may see them now (``item_present`` for each)."""
    hidden = resolutions_hidden_from(principal, items)
    return [item_present(item, captured=captured, hidden_until=hidden.get(item.pk)) for item in items]


def item_present_to(principal: Principal | None, item: ExceptionItem, *, captured: bool = False) -> dict:
    return items_present_to(principal, [item], captured=captured)[0]


def item_present(item: ExceptionItem, *, captured: bool = False, hidden_until: datetime | None = None) -> dict:
    """The item as the API shows it; ``captured`` adds the captured state for a reviewer. With
    ``hidden_until`` the resolution is not shown: the item is as it was just before the decision,
    claimed by the person who made it, until the decision stands."""
    if hidden_until is not None:
        return _before_decision(item_present(item, captured=captured), item, hidden_until)
    resolution = None
    if item.resolution:
        resolution = {
            "outcome": item.resolution,
            "final_output": item.final_output,
            "reason_code": item.reason_code,
            "note": item.resolution_note,
            "resolved_by": item.resolved_by.get_username() if item.resolved_by_id else None,
            "resolved_at": iso_timestamp(item.resolved_at),
        }
        if item.interrupt is not None:
            resolution["human_response"] = item_human_response(item)
    shown = {
        "id": item.pk,
        "workflow": item.workflow.name,
        "policy_version": item.policy_version.version,
        "kind": item.kind,
        "status": item.status,
        "queue": item.queue.name,
        "priority": item.priority,
        "severity": item.severity,
        "due_at": iso_timestamp(item.due_at),
        "correlation_id": item.correlation_id,
        "reasons": item.reasons,
        "resolution": resolution,
        "timestamps": {
            "raised_at": iso_timestamp(item.raised_at),
            "queued_at": iso_timestamp(item.queued_at),
            "first_claimed_at": iso_timestamp(item.first_claimed_at),
            "resolved_at": iso_timestamp(item.resolved_at),
            "delivered_at": iso_timestamp(item.delivered_at),
            "acknowledged_at": iso_timestamp(item.acknowledged_at),
        },
        "claim": {
            "claimed_by": item.claimed_by.get_username(),
            "claimed_at": iso_timestamp(item.claimed_at),
            "expires_at": iso_timestamp(item.claim_expires_at),
        }
        if item.status == "claimed"
        else None,
    }
    if captured:
        shown["captured"] = {
            "proposal": item.proposal,
            "confidence": item.confidence,
            "input": item.input,
            "context": item.context,
            "trace": item.trace,
            "interrupt": item.interrupt,
            "model_version": item.model_version,
            "value_at_risk": str(item.value_at_risk) if item.value_at_risk is not None else None,
            "agent": item.agent.user.get_username(),
        }
    return shown


def _before_decision(shown: dict, item: ExceptionItem, hidden_until: datetime) -> dict:
    shown["status"], shown["resolution"] = "claimed", None
    shown["timestamps"]["resolved_at"] = None
    shown["claim"] = {
        "claimed_by": item.resolved_by.get_username() if item.resolved_by_id else None,
        "claimed_at": iso_timestamp(item.resolved_at),
        "expires_at": iso_timestamp(hidden_until),
    }
    return shown


def event_present(event) -> dict:
    return {
        "at": iso_timestamp(event.created_at),
        "action": event.action,
        "actor": event.actor_label,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "payload": event.payload,
    }


def decision_present(decision: GateDecision, item: ExceptionItem | None, *, shown_to: Principal | None) -> dict:
    return {
        "verdict": decision.verdict,
        "decision_id": decision.pk,
        "policy_version": decision.policy_version.version,
        "reasons": decision.reasons,
        "exception": item_present_to(shown_to, item) if item is not None else None,
    }
