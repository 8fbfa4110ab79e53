"""What a policy asks of the people deciding an item: N-of-M approvals, or k blind judgements.

Asked when someone decides the item, never at intake: the gate's hot path does not pay for it. The
conditions are CEL over the same variables as the rules, read from the item's captured state (and,
for an edit, from the edited output too: the stricter answer stands).
"""

import hashlib
import math
import threading
from dataclasses import dataclass

import cel

from exceptions_app.models import ExceptionItem


@dataclass(frozen=True)
class ApprovalRule:
    required: int
    distinct: str  # "people" or "teams"
    rejections_required: int


@dataclass(frozen=True)
class BlindReview:
    judgements: int
    adjudication_queue: str


_programs: dict[tuple[int, str], object] = {}
_programs_lock = threading.Lock()


def _program(version_id: int, expression: str):
    key = (version_id, expression)
    program = _programs.get(key)
    if program is None:
        program = cel.compile(expression)
        with _programs_lock:
            if len(_programs) > 5000:
                _programs.clear()
            _programs[key] = program
    return program


def _matches(item: ExceptionItem, expression: str, *, output: object) -> bool:
    value_at_risk = float(item.value_at_risk) if item.value_at_risk is not None else 0.0
    variables = cel.Context(
        {
            "output": output,
            "input": item.input if item.input is not None else {},
            "context": item.context if item.context is not None else {},
            "confidence": item.confidence if item.confidence is not None else 0.0,
            "value_at_risk": value_at_risk if math.isfinite(value_at_risk) else 0.0,
        }
    )
    try:
        return _program(item.policy_version_id, expression).execute(variables) is True
    except (KeyError, TypeError, ValueError, RuntimeError):
        # A condition that cannot be evaluated asks for the approvals: failing open would let one person decide.
        return True


def approval_rule(item: ExceptionItem, *, edited_output: object = None) -> ApprovalRule | None:
    """The strictest approval rule matching the item (its proposal, or the edit being made)."""
    outputs = [item.proposal] + ([edited_output] if edited_output is not None else [])
    matching = [
        rule
        for rule in item.policy_version.document.get("approvals", [])
        if any(_matches(item, rule["when"], output=output) for output in outputs)
    ]
    if not matching:
        return None
    strictest = max(matching, key=lambda rule: (rule["required"], rule.get("distinct") == "teams"))
    return ApprovalRule(
        required=strictest["required"],
        distinct=strictest.get("distinct", "people"),
        rejections_required=strictest.get("rejections_required", 1),
    )


def blind_draw(item_id: int) -> float:
    """A number in [0, 1) fixed by the item's id: whether an item is blind-reviewed never changes
    between asks, and needs nothing stored at intake."""
    digest = hashlib.sha256(f"blind-review:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def blind_review(item: ExceptionItem) -> BlindReview | None:
    """The blind review the item is drawn into, if its policy asks for one and the item is in its share."""
    config = item.policy_version.document.get("blind_review")
    if config is None or item.kind not in config.get("kinds", ["hold", "audit", "reported"]):
        return None
    if blind_draw(item.pk) >= config["share"]:
        return None
    if "when" in config and not _matches(item, config["when"], output=item.proposal):
        return None
    return BlindReview(judgements=config["judgements"], adjudication_queue=config["adjudication_queue"])
