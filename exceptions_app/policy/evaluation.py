"""Compiled policies and the gate's evaluation of one output against one.

A policy version is immutable, so its compiled form (CEL programs, output-schema validator) is
built once per process and kept.
"""

import math
import threading
from dataclasses import dataclass, field

import cel
import jsonschema_rs
from jsonschema import Draft202012Validator

from exceptions_app.accountability.sampling import SamplingPlan
from exceptions_app.policy.document import RULE_VARIABLES, SEVERITIES

SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
MAX_SCHEMA_ERRORS = 20


class OutputSchema:
    """A policy's output schema, checked by the Rust validator (jsonschema-rs, about 2 µs an output)
    and, only for an output it refuses, explained by the Python one (about 160 µs), so the field
    paths and messages stay those of the reference implementation. The fast check never decides
    alone that an output is invalid: when the two disagree, the Python validator's word stands."""

    def __init__(self, schema: dict):
        self.detailed = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        try:
            # offline: a $ref to a remote document is refused, never fetched (no requests from the gate).
            self.fast = jsonschema_rs.Draft202012Validator(schema, validate_formats=True, offline=True)
        except (ValueError, jsonschema_rs.ReferencingError):
            self.fast = None  # a schema the Rust validator cannot compile is checked by the Python one alone

    def errors(self, output: object) -> list[dict]:
        """Field-level schema errors as ``{"path": "output.amount", "message": ...}``."""
        if self.fast is not None and self.fast.is_valid(output):
            return []
        found = []
        for error in self.detailed.iter_errors(output):
            path = "output" + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
            )
            found.append({"path": path, "message": error.message})
            if len(found) >= MAX_SCHEMA_ERRORS:
                break
        return found

    def is_valid(self, output: object) -> bool:
        return not self.errors(output)


@dataclass(frozen=True)
class CompiledRule:
    code: str
    severity: str
    queue: str | None
    program: object
    description: str = ""


@dataclass(frozen=True)
class CompiledPolicy:
    version_id: int
    document: dict
    auto_approve: float
    auto_reject: float | None
    rules: tuple[CompiledRule, ...]
    output_validator: OutputSchema
    default_queue: str
    sampling: SamplingPlan | None = None
    # The rule variables its rules read: only those are converted for CEL (the costliest step of an evaluation).
    variables: frozenset[str] = frozenset(RULE_VARIABLES)


@dataclass
class Evaluation:
    verdict: str
    reasons: list[dict] = field(default_factory=list)
    queue: str | None = None
    severity: str = "low"


_cache: dict[int, CompiledPolicy] = {}
_cache_lock = threading.Lock()
_CACHE_LIMIT = 1000


def compiled_policy_cached(version_id: int) -> CompiledPolicy | None:
    return _cache.get(version_id)


def policy_compile(version_id: int, document: dict) -> CompiledPolicy:
    compiled = _cache.get(version_id)
    if compiled is not None:
        return compiled
    compiled = policy_build(document, version_id=version_id)
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[version_id] = compiled
    return compiled


def policy_build(document: dict, *, version_id: int = 0) -> CompiledPolicy:
    """A compiled policy, not cached: for a draft (replay) that has no version id yet."""
    thresholds = document["thresholds"]
    rules = tuple(
        CompiledRule(
            code=rule["code"],
            severity=rule["severity"],
            queue=rule.get("queue"),
            program=cel.compile(rule["when"]),
            description=rule.get("description", ""),
        )
        for rule in document.get("rules", [])
    )
    return CompiledPolicy(
        version_id=version_id,
        document=document,
        auto_approve=float(thresholds["auto_approve"]),
        auto_reject=float(thresholds["auto_reject"]) if "auto_reject" in thresholds else None,
        rules=rules,
        output_validator=OutputSchema(document["output_schema"]),
        default_queue=document["queue"],
        sampling=SamplingPlan.from_document(document.get("sampling")),
        variables=frozenset(name for rule in rules for name in rule.program.variables()) & RULE_VARIABLES,
    )


def output_schema_errors(validator: OutputSchema, output: object) -> list[dict]:
    """Field-level schema errors as ``{"path": "output.amount", "message": ...}``."""
    return validator.errors(output)


def _rule_reason(rule: CompiledRule, variables: cel.Context) -> dict | None:
    try:
        fired = rule.program.execute(variables)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        # A rule that cannot be evaluated holds the output: failing open would let it run unseen.
        return {"code": rule.code, "severity": rule.severity, "error": str(error)[:300]}
    if fired is True:
        return {"code": rule.code, "severity": rule.severity}
    if fired is False:
        return None
    return {"code": rule.code, "severity": rule.severity, "error": f"rule returned {type(fired).__name__}, not bool"}


def breaker_hold(evaluation: Evaluation, policy: CompiledPolicy) -> Evaluation:
    """While the workflow's drift breaker is tripped every output is held, whatever its verdict."""
    held = evaluation.verdict == "hold"
    return Evaluation(
        verdict="hold",
        reasons=[*(evaluation.reasons if held else []), {"code": "breaker_tripped", "severity": "high"}],
        queue=evaluation.queue if held else policy.default_queue,
        severity=max(evaluation.severity if held else "high", "high", key=SEVERITY_RANK.__getitem__),
    )


def rule_variables(
    policy: CompiledPolicy, *, output: object, confidence: float, input_data: object, context: object, value_at_risk
) -> cel.Context:
    """One CEL context per evaluation (handing each rule the plain dict converts it again per rule), holding
    only the variables the policy's rules read: converting a value for CEL costs microseconds a field."""
    values = {
        "output": output,
        "input": input_data if input_data is not None else {},
        "context": context if context is not None else {},
        "confidence": confidence,
        "value_at_risk": value_at_risk if value_at_risk is not None and math.isfinite(value_at_risk) else 0.0,
    }
    return cel.Context({name: value for name, value in values.items() if name in policy.variables})


def policy_evaluate(
    policy: CompiledPolicy,
    *,
    output: object,
    confidence: float,
    input_data: object = None,
    context: object = None,
    value_at_risk: float | None = None,
) -> Evaluation:
    """Verdict for one output: reject below the floor; hold on a schema violation, a rule that
    fires (or fails to evaluate), or confidence below auto-approve; otherwise proceed.

    A held output routes to the queue of its most severe fired rule that names one, else the
    policy's default queue; its severity is the highest of its reasons'."""
    if policy.auto_reject is not None and confidence < policy.auto_reject:
        return Evaluation(
            verdict="reject",
            reasons=[{"code": "below_auto_reject", "confidence": confidence, "threshold": policy.auto_reject}],
        )
    reasons: list[dict] = []
    schema_errors = output_schema_errors(policy.output_validator, output)
    if schema_errors:
        reasons.append({"code": "output_schema_invalid", "severity": "high", "errors": schema_errors})

    fired_rules = []
    if policy.rules:
        variables = rule_variables(
            policy,
            output=output,
            confidence=confidence,
            input_data=input_data,
            context=context,
            value_at_risk=value_at_risk,
        )
        for rule in policy.rules:
            reason = _rule_reason(rule, variables)
            if reason is not None:
                reasons.append(reason)
                fired_rules.append(rule)

    if confidence < policy.auto_approve:
        reasons.append(
            {"code": "low_confidence", "severity": "medium", "confidence": confidence, "threshold": policy.auto_approve}
        )
    if not reasons:
        return Evaluation(verdict="proceed")
    routing_rule = max(
        (rule for rule in fired_rules if rule.queue), key=lambda rule: SEVERITY_RANK[rule.severity], default=None
    )
    return Evaluation(
        verdict="hold",
        reasons=reasons,
        queue=routing_rule.queue if routing_rule else policy.default_queue,
        severity=max((reason["severity"] for reason in reasons), key=SEVERITY_RANK.__getitem__),
    )
