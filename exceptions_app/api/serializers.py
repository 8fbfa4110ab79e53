"""Explicit input and output serializers for the agent API (plain Serializers: no ModelSerializer
overhead on the intake path)."""

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import SkipField, empty

from exceptions_app import interrupts, rules
from exceptions_app.api.error_responses import ERROR_RESPONSES, ErrorOutput  # noqa: F401 - used by the views
from exceptions_app.models import Severity

MAX_BATCH = 1000


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise serializers.ValidationError("must be a finite number")
    return value


class ConfidenceField(serializers.FloatField):
    """A number; ``true`` is not one, although ``float(True)`` would make it a confidence of 1.0."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class ParsedJSONField(serializers.JSONField):
    """Any JSON value. The body was parsed from JSON already, so the stock field's check that the
    value encodes (a full json.dumps of it) is skipped: on the intake path that doubled the work."""

    def to_internal_value(self, data):
        return data


class InterruptField(ParsedJSONField):
    """LangGraph's HumanInterrupt (exceptions_app/interrupts.py says its shape); each problem is
    named by its path under the field (``interrupt.config.allow_edit``)."""

    def to_internal_value(self, data):
        problems = interrupts.interrupt_problems(data)
        if "" in problems:
            raise serializers.ValidationError(problems[""])
        if problems:
            raise serializers.ValidationError({path: [message] for path, message in problems.items()})
        return data


class CapturedStateInput(serializers.Serializer):
    """The state an agent captures with an output or a failure, shared by decisions and reports."""

    workflow = serializers.CharField(max_length=128)
    input = ParsedJSONField(required=False, allow_null=True, default=None)
    context = ParsedJSONField(required=False, allow_null=True, default=None)
    trace = ParsedJSONField(required=False, allow_null=True, default=None)
    correlation_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    callback_url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="")
    value_at_risk = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        rounding=ROUND_HALF_UP,
    )
    model_version = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DecisionInput(CapturedStateInput):
    output = ParsedJSONField(required=False, help_text="required unless an interrupt gives it as its args")
    confidence = ConfidenceField(min_value=0.0, max_value=1.0, validators=[_finite])
    interrupt = InterruptField(
        required=False,
        allow_null=True,
        default=None,
        help_text="LangGraph's HumanInterrupt {action_request: {action, args}, config: {allow_accept, allow_edit, "
        "allow_respond, allow_ignore}, description}: its args are the output, its config the responses allowed",
    )

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            # Named beside the other missing fields, as a required field would be.
            if isinstance(error.detail, dict) and self._output_missing(data):
                error.detail.setdefault("output", [self._output_required()])
            raise

    def _output_missing(self, data) -> bool:
        return isinstance(data, Mapping) and "output" not in data and data.get("interrupt") is None

    def _output_required(self) -> ErrorDetail:
        return ErrorDetail(self.fields["output"].error_messages["required"], code="required")

    def validate(self, attrs):
        interrupt = attrs["interrupt"]
        if interrupt is None:
            if "output" not in attrs:
                raise serializers.ValidationError({"output": [self._output_required()]})
            return attrs
        problem = interrupts.output_problem(
            interrupt=interrupt, output=attrs.get("output"), output_given="output" in attrs
        )
        if problem:
            raise serializers.ValidationError({"output": [problem]})
        attrs["output"] = interrupt["action_request"]["args"]
        return attrs


class BatchEntryInput(DecisionInput):
    idempotency_key = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)


class BatchEntryValidation:
    """The entries of one batch validated as ``BatchEntryInput().run_validation`` does (each field,
    then the serializer's ``validate``), with the per-call work it adds that does nothing for these
    entries left out (the read-only defaults it gathers for serializer validators, which
    BatchEntryInput has none of), and the results for values that repeat across a batch's entries
    (the workflow, the callback URL) reused. Errors are the serializer's own: anything that is not a
    plain JSON object, and every entry with an error, goes through ``run_validation``."""

    REPEATING = frozenset({"workflow", "callback_url", "model_version"})

    def __init__(self):
        self.serializer = BatchEntryInput()
        self.fields = list(self.serializer._writable_fields)
        self._remembered: dict[tuple[str, str], object] = {}
        plain = not self.serializer.validators
        plain = plain and not any(hasattr(self.serializer, f"validate_{field.field_name}") for field in self.fields)
        self._direct = plain and all(field.source_attrs == [field.field_name] for field in self.fields)

    def validate(self, raw) -> dict:
        """The validated entry, or DRF's ValidationError with the serializer's detail."""
        if not self._direct or type(raw) is not dict:
            return self.serializer.run_validation(raw)
        validated = {}
        try:
            for field in self.fields:
                name = field.field_name
                value = raw.get(name, empty)
                try:
                    if name in self.REPEATING and type(value) is str:
                        key = (name, value)
                        if key not in self._remembered:
                            self._remembered[key] = field.run_validation(value)
                        validated[name] = self._remembered[key]
                    else:
                        validated[name] = field.run_validation(value)
                except SkipField:
                    continue
            return self.serializer.validate(validated)
        except (serializers.ValidationError, DjangoValidationError):
            return self.serializer.run_validation(raw)  # raises, with every field's error


class BatchInput(serializers.Serializer):
    # Entries are validated one by one in the view so that one bad entry fails alone.
    decisions = serializers.ListField(child=ParsedJSONField(), min_length=1, max_length=MAX_BATCH)


class ReportInput(CapturedStateInput):
    reason = serializers.RegexField(r"^[a-z0-9][a-z0-9_.-]{0,63}$", help_text="a reason code, e.g. tool_failure")
    message = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, default=Severity.MEDIUM)
    output = serializers.JSONField(required=False, allow_null=True, default=None)


class HumanResponseOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["accept", "edit", "response", "ignore"])
    args = serializers.JSONField(allow_null=True, help_text="the action request (accept, edit), the text (response)")


class ResolutionOutput(serializers.Serializer):
    outcome = serializers.CharField()
    final_output = serializers.JSONField(allow_null=True)
    reason_code = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)
    resolved_by = serializers.CharField(allow_null=True)
    resolved_at = serializers.DateTimeField()
    human_response = HumanResponseOutput(
        required=False, help_text="for an item with a LangGraph interrupt: resume the graph with it"
    )


class TimestampsOutput(serializers.Serializer):
    raised_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField()
    first_claimed_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)


class ReasonOutput(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField(required=False)


class ClaimOutput(serializers.Serializer):
    claimed_by = serializers.CharField()
    claimed_at = serializers.DateTimeField(help_text="when this claim began; a renewal extends expires_at only")
    expires_at = serializers.DateTimeField()


class CapturedOutput(serializers.Serializer):
    proposal = serializers.JSONField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    input = serializers.JSONField(allow_null=True)
    context = serializers.JSONField(allow_null=True)
    trace = serializers.JSONField(allow_null=True)
    interrupt = serializers.JSONField(allow_null=True)
    model_version = serializers.CharField(allow_blank=True)
    value_at_risk = serializers.CharField(allow_null=True)
    agent = serializers.CharField()


class VoteOutput(serializers.Serializer):
    by = serializers.CharField()
    at = serializers.DateTimeField()
    vote = serializers.ChoiceField(choices=["approve", "modify", "reject"])
    team = serializers.CharField(allow_null=True)
    reason_code = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)


class ConsensusOutput(serializers.Serializer):
    """An item that needs several people: N-of-M approvals, or k blind judgements (shown once all are in)."""

    kind = serializers.ChoiceField(choices=["approvals", "blind_review"])
    required = serializers.IntegerField()
    distinct = serializers.ChoiceField(choices=["people", "teams"], required=False)
    approvals = serializers.IntegerField(required=False)
    waiting = serializers.BooleanField(required=False, help_text="approved by some, waiting for more")
    judgements = serializers.IntegerField(required=False)
    adjudication = serializers.BooleanField(required=False, help_text="the judges disagreed: adjudication")
    votes = VoteOutput(many=True)
    revealed = serializers.BooleanField()


class ExceptionItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    workflow = serializers.CharField()
    policy_version = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    queue = serializers.CharField()
    priority = serializers.IntegerField()
    severity = serializers.CharField()
    due_at = serializers.DateTimeField()
    correlation_id = serializers.CharField(allow_blank=True)
    reasons = ReasonOutput(many=True)
    resolution = ResolutionOutput(allow_null=True)
    timestamps = TimestampsOutput()
    claim = ClaimOutput(allow_null=True)
    captured = CapturedOutput(required=False)
    consensus = ConsensusOutput(required=False, allow_null=True)


class ExceptionPageOutput(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ExceptionItemOutput(many=True)


class EventOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    action = serializers.CharField()
    actor = serializers.CharField()
    from_status = serializers.CharField(allow_blank=True)
    to_status = serializers.CharField(allow_blank=True)
    payload = serializers.DictField()


class QueueOutput(serializers.Serializer):
    name = serializers.CharField()
    sla_seconds = serializers.IntegerField()
    escalation_queue = serializers.CharField(allow_null=True)
    teams = serializers.ListField(child=serializers.CharField())
    depth = serializers.IntegerField()
    claimed = serializers.IntegerField()
    snoozed = serializers.IntegerField()
    oldest_age_seconds = serializers.FloatField(allow_null=True)


class ResolveInput(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["approve", "modify", "reject", "escalate", "respond"],
        help_text="respond answers a LangGraph interrupt with the note as the text",
    )
    output = serializers.JSONField(required=False, allow_null=True, default=None)
    reason_code = serializers.RegexField(rules.REASON_CODE_PATTERN, required=False, default="")
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if attrs["action"] == "modify" and attrs["output"] is None:
            raise serializers.ValidationError({"output": "an edited output is required to modify"})
        problem = rules.resolution_reason_problem(action=attrs["action"], reason_code=attrs["reason_code"])
        if problem:
            raise serializers.ValidationError({"reason_code": problem})
        return attrs


class SnoozeInput(serializers.Serializer):
    until = serializers.DateTimeField()
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


class NoteInput(serializers.Serializer):
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


class CommentInput(serializers.Serializer):
    text = serializers.CharField(min_length=1, max_length=4000)


class DecisionOutput(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["proceed", "hold", "reject"])
    decision_id = serializers.IntegerField()
    policy_version = serializers.IntegerField()
    reasons = ReasonOutput(many=True)
    exception = ExceptionItemOutput(allow_null=True)


class BatchResultOutput(serializers.Serializer):
    index = serializers.IntegerField()
    verdict = serializers.CharField(required=False)
    decision_id = serializers.IntegerField(required=False)
    reasons = ReasonOutput(many=True, required=False)
    exception = ExceptionItemOutput(allow_null=True, required=False)
    error = serializers.DictField(required=False)


class BatchOutput(serializers.Serializer):
    recorded = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BatchResultOutput(many=True)


class WorkflowOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    published_at = serializers.DateTimeField()
    policy = serializers.DictField()


class WorkflowCreatedOutput(WorkflowOutput):
    webhook_secret = serializers.CharField(
        required=False, help_text="shown once, when the workflow is created without a secret of its own"
    )


class QueueInput(serializers.Serializer):
    sla_seconds = serializers.IntegerField(min_value=1, max_value=rules.LONGEST_DEADLINE_SECONDS, required=False)
    escalation_queue = serializers.SlugField(max_length=64, required=False, allow_blank=True)
    teams = serializers.ListField(child=serializers.SlugField(max_length=64), required=False, max_length=100)
    priority_weights = serializers.DictField(child=serializers.FloatField(min_value=0, max_value=100), required=False)
