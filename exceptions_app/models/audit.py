from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Append-only record of a transition. Nothing in the app updates or deletes one, and on
    PostgreSQL a trigger refuses UPDATE and DELETE."""

    item = models.ForeignKey(
        "exceptions_app.ExceptionItem", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    workflow = models.ForeignKey("exceptions_app.Workflow", null=True, blank=True, on_delete=models.PROTECT)
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_label = models.CharField(max_length=150)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["item", "created_at"], name="audit_item_time")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"
