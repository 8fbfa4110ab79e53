"""What a workflow's policy asks of the people who review its items: which approvals need a
confirmation (and why), which reasons a rejection picks from, which values each reason compared,
and which fields the item page shows as labelled values. The console asks these; it decides none."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# A field path in a CEL expression: output.iban, context.supplier_iban, input.invoice_total.
_CEL_FIELD = re.compile(r"\b(output|input|context)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# Members that are CEL functions or macros, not fields: output.lines.map(...) compares output.lines.
_CEL_MEMBERS = frozenset({"all", "exists", "exists_one", "map", "filter", "size", "contains", "startsWith"})
_MISSING = object()


def reject_reasons(document: dict) -> list[dict]:
    """The reasons a rejection picks from, each ``{"code", "label"}``, in the policy's order."""
    return list(document.get("reject_reasons", []))


def reject_free_text_allowed(document: dict) -> bool:
    """A typed reason code is allowed unless the policy lists reasons and says otherwise."""
    return bool(document.get("reject_free_text", not document.get("reject_reasons")))


def _as_decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def confirmation_risks(document: dict, *, reasons: list[dict], value_at_risk) -> list[str]:
    """Why approving this item needs a confirmation, in words; empty when one key may approve it."""
    rules = {rule["code"]: rule for rule in document.get("rules", [])}
    risks = []
    for reason in reasons:
        rule = rules.get(reason.get("code"), {})
        if rule.get("confirm"):  # true (a, then Enter) or "typed" (a, then the attestation)
            risks.append(f"{rule['code']} ({rule['severity']}): {rule.get('description') or rule['when']}")
    threshold, value = _as_decimal(document.get("confirm_value_at_risk")), _as_decimal(value_at_risk)
    if threshold is not None and value is not None and value >= threshold:
        risks.append(f"value at risk {value:,} is at or above {threshold:,}, the policy's limit for one key")
    return risks


@dataclass(frozen=True)
class Attestation:
    """What a reviewer must type to approve an item a ``confirm: typed`` rule held."""

    rule: str
    what: str  # in words, for the label: "the value of output.iban", "the rule's code"
    expected: str


def _typed_rule(document: dict, reasons: list[dict]) -> dict | None:
    rules = {rule["code"]: rule for rule in document.get("rules", [])}
    held_by = (rules.get(reason.get("code"), {}) for reason in reasons)
    return next((rule for rule in held_by if rule.get("confirm") == "typed"), None)


def needs_typed_attestation(document: dict, *, reasons: list[dict]) -> bool:
    """Whether approving takes a typed attestation: such an item is approved one by one, never in bulk."""
    return _typed_rule(document, reasons) is not None


def typed_attestation(document: dict, *, reasons: list[dict], captured: dict) -> Attestation | None:
    """The attestation approving this item takes, or None. The first ``confirm: typed`` rule that held
    it decides: the value of the field its ``attest`` names, else its own code."""
    rule = _typed_rule(document, reasons)
    if rule is None:
        return None
    value = value_at(captured, rule["attest"]) if rule.get("attest") else _MISSING
    if is_missing(value) or value is None or isinstance(value, dict | list) or not str(value).strip():
        return Attestation(rule=rule["code"], what="the rule's code", expected=rule["code"])
    return Attestation(rule=rule["code"], what=f"the value of {rule['attest']}", expected=str(value))


def _comparable(text: str) -> str:
    return "".join(text.split()).casefold()


def attestation_problem(attestation: Attestation | None, typed: str) -> str:
    """Why ``typed`` does not attest, in words; empty when it does (spaces and letter case aside)."""
    if attestation is None or _comparable(typed) == _comparable(attestation.expected):
        return ""
    if not typed.strip():
        return f"type {attestation.what} to confirm"
    return f"this is not {attestation.what}; type it exactly as shown"


def cel_field_paths(expression: str) -> list[str]:
    """The captured-state fields an expression reads, in order of appearance, without duplicates."""
    paths = []
    for match in _CEL_FIELD.finditer(expression):
        parts = [match.group(1)]
        for name in match.group(2).split(".")[1:]:
            if name in _CEL_MEMBERS:
                break
            parts.append(name)
        path = ".".join(parts)
        if len(parts) > 1 and path not in paths:
            paths.append(path)
    return paths


def value_at(captured: dict, path: str):
    """The value at ``path`` (output.iban) in ``{"output": ..., "input": ..., "context": ...}``, or
    ``_MISSING``; see ``is_missing``."""
    value = captured
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return _MISSING
        value = value[name]
    return value


def is_missing(value) -> bool:
    return value is _MISSING


def evidence(document: dict, *, reasons: list[dict], captured: dict) -> dict[str, list[dict]]:
    """For each rule that held the item, the fields it compared and their values, by rule code: the
    rule's ``evidence`` when the policy names it, else the field paths of its expression."""
    rules = {rule["code"]: rule for rule in document.get("rules", [])}
    shown = {}
    for reason in reasons:
        rule = rules.get(reason.get("code"))
        if rule is None:
            continue
        paths = rule.get("evidence") or cel_field_paths(rule["when"])
        fields = []
        for path in paths:
            value = value_at(captured, path)
            fields.append({"path": path, "missing": is_missing(value), "value": None if is_missing(value) else value})
        shown[rule["code"]] = fields
    return shown


def _title(output_schema: dict, path: str) -> str:
    """A field's label: its JSON Schema title for output fields, else its name in words."""
    parts = path.split(".")
    if parts[0] == "output":
        schema = output_schema
        for name in parts[1:]:
            schema = (schema.get("properties") or {}).get(name) or {}
        if schema.get("title"):
            return schema["title"]
    return parts[-1].replace("_", " ").capitalize()


def review_fields(document: dict, *, captured: dict) -> list[dict]:
    """Labelled fields for the item page, section by section: the policy's ``review_layout``, or
    else the output's fields that its JSON Schema gives a title. Empty when neither exists."""
    output_schema = document.get("output_schema", {})
    layout = document.get("review_layout")
    if layout is None:
        titled = [name for name, schema in (output_schema.get("properties") or {}).items() if schema.get("title")]
        layout = {"output": [f"output.{name}" for name in titled]} if titled else {}
    sections = []
    for section in ("output", "input", "context"):
        fields = []
        for path in layout.get(section, []):
            value = value_at(captured, path)
            if not is_missing(value):
                fields.append({"path": path, "label": _title(output_schema, path), "value": value})
        if fields:
            sections.append({"name": section, "fields": fields})
    return sections
