from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a periodic Celery task ran: proof that beat and a worker are alive."""

    name = models.CharField(max_length=64, unique=True)
    beats = models.PositiveBigIntegerField(default=0)
    last_seen_at = models.DateTimeField()
    worker_hostname = models.CharField(max_length=255)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen_at:%H:%M:%S}"


class WorkerPing(models.Model):
    """A task enqueued by a request and completed by a worker, for the health page."""

    requested_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    worker_hostname = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"ping {self.pk} ({'answered' if self.completed_at else 'waiting'})"


class WorkerConsumer(models.Model):
    """A running Celery worker and the queues it consumes, refreshed every few seconds by the worker
    itself (exceptions_app.pipeline.ConsumerHeartbeat), so anyone can see which queue has no consumer."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname} consuming {', '.join(self.queues)}"
