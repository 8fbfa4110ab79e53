"""Turning items into what the console shows: pretty JSON, reasons explained, SLA and lease clocks."""

import difflib
import json
from datetime import datetime

from django.utils import timezone

from exceptions_app import interrupts
from exceptions_app.models import AuditEvent, ExceptionItem
from exceptions_app.policy import review
from exceptions_app.selectors import item_consensus


def pretty(value) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def diff_lines(before, after) -> list[tuple[str, str]]:
    """A unified diff of two JSON values as (kind, line) pairs: kind is add, remove or same."""
    lines = []
    for line in difflib.unified_diff(pretty(before).splitlines(), pretty(after).splitlines(), lineterm="", n=3):
        if line.startswith(("---", "+++", "@@")):
            continue
        kind = {"+": "add", "-": "remove"}.get(line[:1], "same")
        lines.append((kind, line))
    return lines


def shown_value(value) -> str:
    """A captured value as the evidence table shows it: strings bare, the rest as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def explained_reasons(item: ExceptionItem, captured: dict) -> list[dict]:
    """Each reason the item was held: the rule's description, the values it compared (its
    evidence), and its expression (folded away on the page)."""
    document = item.policy_version.document
    rules = {rule["code"]: rule for rule in document.get("rules", [])}
    evidence = review.evidence(document, reasons=item.reasons, captured=captured)
    shown = []
    for reason in item.reasons:
        rule = rules.get(reason.get("code"), {})
        fields = [
            {**field, "shown": "" if field["missing"] else shown_value(field["value"])}
            for field in evidence.get(reason.get("code"), [])
        ]
        shown.append(
            {**reason, "description": rule.get("description", ""), "when": rule.get("when", ""), "evidence": fields}
        )
    return shown


def interrupt_view(item: ExceptionItem) -> dict | None:
    """A LangGraph interrupt as the item page shows it: the action asked for, its description, and
    the responses the agent allows (which decide the buttons)."""
    if item.interrupt is None:
        return None
    config = item.interrupt["config"]
    return {
        "action": item.interrupt["action_request"]["action"],
        "description": item.interrupt.get("description") or "",
        "allows": [name for flag, name in interrupts.RESPONSE_OF_FLAG.items() if config.get(flag)],
    }


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def captured_state(item: ExceptionItem) -> dict:
    """What the policy's field paths (output.iban, context.supplier_iban) are read from."""
    return {"output": item.proposal, "input": item.input, "context": item.context}


def _voted_by(item: ExceptionItem, viewer) -> bool:
    return item.votes.filter(voter=viewer).exists()


def item_view(item: ExceptionItem, *, viewer) -> dict:
    now = timezone.now()
    thresholds = item.policy_version.document["thresholds"]
    events = list(AuditEvent.objects.filter(item=item).order_by("created_at", "id"))
    mine = item.status == "claimed" and item.claimed_by_id == viewer.pk
    document = item.policy_version.document
    captured = captured_state(item)
    sections = review.review_fields(document, captured=captured)
    for section in sections:
        for field in section["fields"]:
            field["shown"] = shown_value(field["value"])
    consensus = item_consensus(item)
    return {
        "item": item,
        "consensus": consensus,
        # Whoever voted on an open item cannot take it again.
        "voted_by_me": bool(consensus) and not item.is_terminal and _voted_by(item, viewer),
        "reasons": explained_reasons(item, captured),
        "review_sections": sections,
        "confirm_risks": review.confirmation_risks(document, reasons=item.reasons, value_at_risk=item.value_at_risk),
        "attestation": review.typed_attestation(document, reasons=item.reasons, captured=captured),
        "threshold": thresholds["auto_approve"],
        "proposal_json": pretty(item.proposal),
        "input_json": pretty(item.input),
        "context_json": pretty(item.context),
        "trace_json": pretty(item.trace),
        "final_json": pretty(item.final_output),
        "interrupt": interrupt_view(item),
        "allowed_actions": interrupts.allowed_actions(item.interrupt),
        "human_response": interrupts.item_human_response(item),
        "age_seconds": seconds_between(item.raised_at, now),
        "sla_seconds_left": seconds_between(now, item.due_at),
        "lease_seconds_left": seconds_between(now, item.claim_expires_at) if mine else None,
        "claimed_by_me": mine,
        "lease_expired": mine and item.claim_expires_at <= now,
        "claimed_by_other": item.status == "claimed" and not mine,
        "timeline": [event for event in events if event.action != "commented"],
        "comments": [event for event in events if event.action == "commented"],
    }
