from django.conf import settings
from django.db import models


class Workflow(models.Model):
    """A decision type such as ``billing.invoice_adjustment``; owns a versioned policy."""

    name = models.CharField(max_length=128, unique=True)
    current_policy = models.ForeignKey(
        "exceptions_app.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    webhook_secret = models.CharField(max_length=128, blank=True)
    # After a rotation the previous secret also signs until it retires, so receivers can switch over.
    previous_webhook_secret = models.CharField(max_length=128, blank=True)
    previous_secret_retires_at = models.DateTimeField(null=True, blank=True)
    # Set while the drift breaker is tripped: the gate holds every output. Read with the workflow
    # the gate loads anyway, so it costs intake no query.
    tripped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class BreakerState(models.Model):
    """The drift breaker's CUSUM scores for a workflow (one per judged stream), updated with
    every judgement, and why and when it last tripped. Reset only by a supervisor (audited)."""

    workflow = models.OneToOneField(Workflow, on_delete=models.CASCADE, related_name="breaker")
    audit_score = models.FloatField(default=0.0)
    override_score = models.FloatField(default=0.0)
    audit_judged = models.PositiveIntegerField(default=0)
    override_judged = models.PositiveIntegerField(default=0)
    tripped_at = models.DateTimeField(null=True, blank=True)
    tripped_reason = models.CharField(max_length=200, blank=True)
    # The judgements of the last undo window, in order ({item, stream, step, before, at}), so an
    # undone judgement can be taken back out of its score (services.judgements).
    recent = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"breaker of {self.workflow_id} ({'tripped' if self.tripped_at else 'closed'})"


class PolicySource(models.TextChoices):
    FILE = "file", "Policy file"
    API = "api", "API"
    UI = "ui", "Console"


class PolicyVersion(models.Model):
    """An immutable published policy. Items record the version that held them."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="policy_versions")
    version = models.PositiveIntegerField()
    document = models.JSONField()
    checksum = models.CharField(max_length=64)
    source = models.CharField(max_length=8, choices=PolicySource.choices)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "version"], name="policy_version_unique")]
        ordering = ["workflow", "-version"]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.version}"
