from django.conf import settings
from django.db import models


class AuditEventImmutable(Exception):
    """Raised by code that tries to change or delete an audit event: a bug, never a user error."""


class AuditEventQuerySet(models.QuerySet):
    """Reads and inserts only: the ORM's bulk update and delete paths refuse."""

    def update(self, **kwargs):
        raise AuditEventImmutable("audit events are append-only: update() refused")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditEventImmutable("audit events are append-only: bulk_update() refused")

    def delete(self):
        raise AuditEventImmutable("audit events are append-only: delete() refused")

    delete.queryset_only = True


class AuditEvent(models.Model):
    """Append-only record of a transition. The ORM refuses to update or delete one (save of an
    existing row, update(), delete()), and on PostgreSQL triggers refuse UPDATE, DELETE and
    TRUNCATE of the table (migrations 0003 and 0010)."""

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

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["item", "created_at"], name="audit_item_time")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEventImmutable("audit events are append-only: saving an existing event refused")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEventImmutable("audit events are append-only: delete() refused")
