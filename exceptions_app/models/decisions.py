from django.db import models


class Verdict(models.TextChoices):
    PROCEED = "proceed", "Proceed"
    HOLD = "hold", "Hold"
    REJECT = "reject", "Reject"


class GateDecision(models.Model):
    """Every output submitted to the gate, with its verdict: the base of review and override rates."""

    workflow = models.ForeignKey("exceptions_app.Workflow", on_delete=models.PROTECT, related_name="decisions")
    policy_version = models.ForeignKey("exceptions_app.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    agent = models.ForeignKey("exceptions_app.Principal", on_delete=models.PROTECT, related_name="decisions")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    confidence = models.FloatField()
    reasons = models.JSONField(default=list)
    output = models.JSONField()
    input = models.JSONField(null=True, blank=True)
    context = models.JSONField(null=True, blank=True)
    correlation_id = models.CharField(max_length=200, blank=True)
    value_at_risk = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL means "no key"
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # The probability this verdict was sampled for audit, when its policy samples it; null otherwise.
    audit_probability = models.FloatField(null=True, blank=True)
    # The W3C traceparent of the gate's span for it, when tracing is on (exceptions_app/tracing/spans.py).
    traceparent = models.CharField(max_length=55, blank=True, default="", db_default="")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="decision_idempotency_key_unique_per_agent",
            )
        ]
        indexes = [models.Index(fields=["workflow", "created_at"], name="decision_workflow_time")]

    def __str__(self) -> str:
        return f"decision {self.pk} {self.verdict}"
