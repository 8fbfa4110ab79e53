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
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


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
