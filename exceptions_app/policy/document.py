"""The policy document (the YAML file's shape and the API's), and its validation.

Structural checks come from a JSON Schema; semantic checks (CEL compiles, the output schema is
itself a valid JSON Schema, thresholds ordered, rule codes unique) follow, each error naming the
path and, for rules, the rule code.
"""

import hashlib
import json
import re
from dataclasses import dataclass

import cel
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from exceptions_app.accountability.breaker import MIN_AUDIT_RATE
from exceptions_app.rules import LONGEST_DEADLINE_SECONDS, REASON_CODE_PATTERN

SEVERITIES = ["low", "medium", "high", "critical"]
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
WORKFLOW_NAME = r"^[a-z0-9][a-z0-9_.-]{0,127}$"
# A field of the captured state a reviewer is shown, e.g. output.iban or context.supplier_iban.
FIELD_PATH = r"^(output|input|context)(\.[A-Za-z0-9_$-]{1,100}){0,8}$"
_FIELD_PATHS = {"type": "array", "maxItems": 50, "items": {"type": "string", "pattern": FIELD_PATH}}

# Bounds that must exclude 0 or 1 are checked in _accountability_errors: the schema is also the API's
# request body in OpenAPI 3.0, whose exclusiveMinimum is a boolean, not draft 2020-12's number.
_RATE = {"type": "number", "minimum": 0, "maximum": 1}
_DEADLINE_SECONDS = {"type": "integer", "minimum": 1, "maximum": LONGEST_DEADLINE_SECONDS}
_CUSUM_STREAM = {
    "type": "object",
    "additionalProperties": False,
    "required": ["baseline", "detect"],
    "properties": {"baseline": _RATE, "detect": _RATE},
}

_ITEM_KINDS = ["hold", "audit", "reported"]
_CEL = {"type": "string", "minLength": 1, "maxLength": 4000}
# Four eyes: the items a condition matches need ``required`` distinct approvers (docs/four-eyes.md).
_APPROVALS = {
    "type": "array",
    "maxItems": 20,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["when", "required"],
        "properties": {
            "when": _CEL,
            "required": {"type": "integer", "minimum": 2, "maximum": 10},
            "distinct": {"enum": ["people", "teams"]},
            # How many rejections end it (1: any approver's reject does).
            "rejections_required": {"type": "integer", "minimum": 1, "maximum": 10},
        },
    },
}
# Blind multi-review: k independent judgements of a share of items; disagreement goes to adjudication.
_BLIND_REVIEW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["share", "judgements", "adjudication_queue"],
    "properties": {
        "share": _RATE,
        "judgements": {"type": "integer", "minimum": 2, "maximum": 10},
        "kinds": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": _ITEM_KINDS}},
        "when": _CEL,
        "adjudication_queue": {"type": "string", "pattern": SLUG},
    },
}

POLICY_DOCUMENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["workflow", "thresholds", "queue", "sla_seconds", "output_schema"],
    "properties": {
        "workflow": {"type": "string", "pattern": WORKFLOW_NAME},
        "description": {"type": "string", "maxLength": 2000},
        "thresholds": {
            "type": "object",
            "additionalProperties": False,
            "required": ["auto_approve"],
            "properties": {
                "auto_approve": {"type": "number", "minimum": 0, "maximum": 1},
                "auto_reject": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        "rules": {
            "type": "array",
            "maxItems": 200,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "when", "severity"],
                "properties": {
                    "code": {"type": "string", "pattern": SLUG},
                    "when": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "severity": {"enum": SEVERITIES},
                    "queue": {"type": "string", "pattern": SLUG},
                    "description": {"type": "string", "maxLength": 2000},
                    # Approving an item this rule held takes a confirmation naming the risk (true:
                    # a, then Enter), or "typed": the reviewer also types the value of the ``attest``
                    # field (else the rule's code) to attest they checked it.
                    "confirm": {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["typed"]}]},
                    "attest": {"type": "string", "pattern": FIELD_PATH},
                    # The fields a reviewer compares; without it, the field paths of ``when``.
                    "evidence": _FIELD_PATHS,
                },
            },
        },
        # Approving an item with at least this value at risk takes a confirmation.
        "confirm_value_at_risk": {"type": "number", "minimum": 0},
        # The reasons a reviewer picks from to reject (r, then 1 to 9), and whether a typed code is allowed too.
        "reject_reasons": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "label"],
                "properties": {
                    "code": {"type": "string", "pattern": REASON_CODE_PATTERN},
                    "label": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            },
        },
        "reject_free_text": {"type": "boolean"},
        # What the item page shows as labelled fields, in order, before the raw JSON.
        "review_layout": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"output": _FIELD_PATHS, "input": _FIELD_PATHS, "context": _FIELD_PATHS},
        },
        "output_schema": {"type": "object"},
        "queue": {"type": "string", "pattern": SLUG},
        "sla_seconds": _DEADLINE_SECONDS,
        "expire_after_seconds": _DEADLINE_SECONDS,
        "fallback": {"enum": ["approve", "reject"]},
        "callback_url": {"type": "string", "format": "uri", "maxLength": 2000},
        "callback_task": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$"},
        "callback_queue": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,200}$"},
        "sampling": {
            "type": "object",
            "additionalProperties": False,
            "required": ["proceed_rate"],
            "properties": {
                # Above 0: every proceed must have a chance of audit, or its error cannot be estimated.
                "proceed_rate": _RATE,
                "reject_rate": _RATE,
                "queue": {"type": "string", "pattern": SLUG},
                "sla_seconds": _DEADLINE_SECONDS,
                "band_width": {"type": "number", "minimum": 0.01, "maximum": 0.5},
                "strata": {
                    "type": "array",
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["below", "proceed_rate"],
                        "properties": {"below": {"type": "number", "minimum": 0, "maximum": 1}, "proceed_rate": _RATE},
                    },
                },
            },
        },
        "targets": {
            "type": "object",
            "additionalProperties": False,
            "required": ["max_unattended_error"],
            "properties": {"max_unattended_error": _RATE},
        },
        "breaker": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "audit": _CUSUM_STREAM,
                "override": _CUSUM_STREAM,
                "threshold": {"type": "number", "minimum": 0, "maximum": 1000},
            },
        },
        "approvals": _APPROVALS,
        "blind_review": _BLIND_REVIEW,
    },
}
_DOCUMENT_VALIDATOR = Draft202012Validator(POLICY_DOCUMENT_SCHEMA)
RULE_VARIABLES = frozenset({"output", "input", "context", "confidence", "value_at_risk"})
# Names bound by CEL's comprehension macros, e.g. the ``line`` in ``output.lines.all(line, ...)``.
_MACRO_BINDING = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")


def _unknown_variables(expression: str, program) -> list[str]:
    bound = set(_MACRO_BINDING.findall(expression))
    return sorted(set(program.variables()) - RULE_VARIABLES - bound)


@dataclass(frozen=True)
class PolicyError:
    path: str
    message: str
    rule: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "message": self.message, **({"rule": self.rule} if self.rule else {})}

    def __str__(self) -> str:
        where = f"rule {self.rule!r}" if self.rule else self.path or "policy"
        return f"{where}: {self.message}"


class PolicyInvalid(ValueError):
    def __init__(self, errors: list[PolicyError]):
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


def _json_path(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def policy_document_errors(document: object) -> list[PolicyError]:
    """Every problem with a policy document; an empty list means it can be published."""
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as error:
        # YAML turns unquoted dates and times into objects JSON cannot hold.
        return [PolicyError(path="", message=f"holds a value that is not JSON ({error}); quote dates and times")]
    errors = [
        PolicyError(path=_json_path(error.absolute_path), message=error.message)
        for error in sorted(_DOCUMENT_VALIDATOR.iter_errors(document), key=lambda error: list(error.absolute_path))
    ]
    if errors:
        return errors
    if "callback_url" in document and "callback_task" in document:
        errors.append(PolicyError("callback_task", "choose one target: callback_url or callback_task"))
    thresholds = document["thresholds"]
    if "auto_reject" in thresholds and thresholds["auto_reject"] >= thresholds["auto_approve"]:
        errors.append(PolicyError("thresholds.auto_reject", "must be below thresholds.auto_approve"))
    errors += _accountability_errors(document)
    reject_codes = [reason["code"] for reason in document.get("reject_reasons", [])]
    for index, code in enumerate(reject_codes):
        if code in reject_codes[:index]:
            errors.append(PolicyError(f"reject_reasons[{index}].code", f"duplicate reject reason {code!r}"))
    if document.get("reject_free_text") is False and not reject_codes:
        errors.append(PolicyError("reject_free_text", "without reject_reasons, a typed reason code is the only way"))
    seen_codes: set[str] = set()
    for index, rule in enumerate(document.get("rules", [])):
        code = rule["code"]
        if code in seen_codes:
            errors.append(PolicyError(f"rules[{index}].code", f"duplicate rule code {code!r}", rule=code))
        seen_codes.add(code)
        if "attest" in rule and rule.get("confirm") != "typed":
            errors.append(PolicyError(f"rules[{index}].attest", "needs confirm: typed", rule=code))
        errors += _condition_errors(rule["when"], f"rules[{index}].when", rule=code)
    errors += _consensus_errors(document)
    try:
        Draft202012Validator.check_schema(document["output_schema"])
    except SchemaError as error:
        path = _json_path(["output_schema", *error.absolute_path])
        errors.append(PolicyError(path, f"invalid JSON Schema: {error.message}"))
    return errors


def _condition_errors(expression: str, path: str, *, rule: str | None = None) -> list[PolicyError]:
    """A CEL condition that does not compile, or reads a variable rules do not have."""
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as error:
        return [PolicyError(path, f"invalid CEL expression: {error}", rule=rule)]
    unknown = _unknown_variables(expression, program)
    if unknown:
        known = ", ".join(sorted(RULE_VARIABLES))
        return [PolicyError(path, f"unknown variable {', '.join(unknown)} (rules can use {known})", rule=rule)]
    return []


def _consensus_errors(document: dict) -> list[PolicyError]:
    """Approval conditions and the blind-review condition compile; rejections can be reached."""
    errors = []
    for index, approval in enumerate(document.get("approvals", [])):
        errors += _condition_errors(approval["when"], f"approvals[{index}].when")
        if approval.get("rejections_required", 1) > approval["required"]:
            message = "must not be above required"
            errors.append(PolicyError(f"approvals[{index}].rejections_required", message))
    blind = document.get("blind_review")
    if blind is not None:
        if "when" in blind:
            errors += _condition_errors(blind["when"], "blind_review.when")
        if blind["share"] == 0:
            errors.append(PolicyError("blind_review.share", "must be above 0 (or leave blind_review out)"))
    return errors


def _accountability_errors(document: dict) -> list[PolicyError]:
    """Sampling strata in order, breaker streams that can detect a rise, and a breaker that watches something."""
    errors = []
    sampling = document.get("sampling", {})
    rates = [("sampling.proceed_rate", sampling.get("proceed_rate"))] + [
        (f"sampling.strata[{index}].proceed_rate", stratum["proceed_rate"])
        for index, stratum in enumerate(sampling.get("strata", []))
    ]
    for path, rate in rates:
        if rate == 0:
            errors.append(PolicyError(path, "must be above 0: every proceed needs a chance of audit"))
    target = document.get("targets", {}).get("max_unattended_error")
    if target is not None and not 0 < target < 1:
        errors.append(PolicyError("targets.max_unattended_error", "must be between 0 and 1, both excluded"))
    strata = sampling.get("strata", [])
    for index in range(1, len(strata)):
        if strata[index]["below"] <= strata[index - 1]["below"]:
            errors.append(
                PolicyError(f"sampling.strata[{index}].below", "must be above the previous stratum's below (ascending)")
            )
    breaker = document.get("breaker")
    if breaker is not None:
        if not {"audit", "override"} & set(breaker):
            errors.append(PolicyError("breaker", "name at least one stream to watch: audit or override"))
        if "audit" in breaker and "sampling" not in document:
            errors.append(PolicyError("breaker.audit", "watching audits needs sampling (there would be none)"))
        elif "audit" in breaker:
            errors += [
                PolicyError(
                    path,
                    f"the breaker watches audits: sample at least {MIN_AUDIT_RATE:g} of proceeds, or it sees too few "
                    "judgements to trip within 300 unattended decisions (docs/accountability.md)",
                )
                for path, rate in rates
                if 0 < rate < MIN_AUDIT_RATE
            ]
        if breaker.get("threshold") == 0:
            errors.append(PolicyError("breaker.threshold", "must be above 0"))
        for stream in ("audit", "override"):
            if stream not in breaker:
                continue
            baseline, detect = breaker[stream]["baseline"], breaker[stream]["detect"]
            if not 0 < baseline < 1:
                errors.append(PolicyError(f"breaker.{stream}.baseline", "must be between 0 and 1, both excluded"))
            elif detect <= baseline or detect >= 1:
                errors.append(
                    PolicyError(f"breaker.{stream}.detect", "must be above baseline (the rise to detect) and below 1")
                )
    return errors


def policy_document_validate(document: object) -> dict:
    errors = policy_document_errors(document)
    if errors:
        raise PolicyInvalid(errors)
    return document


def policy_document_checksum(document: dict) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
