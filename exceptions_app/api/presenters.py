"""Rows to response dicts, by hand on the hot path (shapes declared in serializers.py)."""

from exceptions_app.interrupts import item_human_response
from exceptions_app.models import ExceptionItem, GateDecision


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def item_present(item: ExceptionItem, *, captured: bool = False) -> dict:
    """The item as the API shows it; ``captured`` adds the captured state for a reviewer."""
    resolution = None
    if item.resolution:
        resolution = {
            "outcome": item.resolution,
            "final_output": item.final_output,
            "reason_code": item.reason_code,
            "note": item.resolution_note,
            "resolved_by": item.resolved_by.get_username() if item.resolved_by_id else None,
            "resolved_at": _iso(item.resolved_at),
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
        "due_at": _iso(item.due_at),
        "correlation_id": item.correlation_id,
        "reasons": item.reasons,
        "resolution": resolution,
        "timestamps": {
            "raised_at": _iso(item.raised_at),
            "queued_at": _iso(item.queued_at),
            "first_claimed_at": _iso(item.first_claimed_at),
            "resolved_at": _iso(item.resolved_at),
            "delivered_at": _iso(item.delivered_at),
            "acknowledged_at": _iso(item.acknowledged_at),
        },
        "claim": {
            "claimed_by": item.claimed_by.get_username(),
            "claimed_at": _iso(item.claimed_at),
            "expires_at": _iso(item.claim_expires_at),
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


def event_present(event) -> dict:
    return {
        "at": _iso(event.created_at),
        "action": event.action,
        "actor": event.actor_label,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "payload": event.payload,
    }


def decision_present(decision: GateDecision, item: ExceptionItem | None) -> dict:
    return {
        "verdict": decision.verdict,
        "decision_id": decision.pk,
        "policy_version": decision.policy_version.version,
        "reasons": decision.reasons,
        "exception": item_present(item) if item is not None else None,
    }
