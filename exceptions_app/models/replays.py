from django.conf import settings
from django.db import models


class ReplayStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReplayRun(models.Model):
    """A replay of a draft policy over a window too large to answer within the request, run by a
    worker. It records what was asked and, once done, the answer; it is deleted a day later.

    States::

        queued ──worker──▶ running ──▶ done
                              └──────▶ failed (the error is kept; also when its worker
                                       stopped reporting progress: it died)

    A replay only reads the live tables (decisions, items): this row is all it writes.
    """

    workflow = models.ForeignKey("exceptions_app.Workflow", on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    document = models.JSONField()
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    limit = models.PositiveIntegerField(null=True, blank=True)
    sample_limit = models.PositiveSmallIntegerField(default=20)
    status = models.CharField(max_length=8, choices=ReplayStatus.choices, default=ReplayStatus.QUEUED)
    decisions_total = models.PositiveBigIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"replay {self.pk} of {self.workflow_id} ({self.status})"
