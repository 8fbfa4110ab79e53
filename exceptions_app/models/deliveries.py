from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead letter"


class TargetKind(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook"
    CELERY_TASK = "celery_task", "Celery task"
    POLL = "poll", "Pulled by the agent"


class Delivery(models.Model):
    """The outbox: a resolution (or a gate verdict the agent asked to hear about) travelling back to
    execution. Written in the transaction of the change it carries; the database, not the broker,
    says what is pending.

    States::

        pending ──2xx / published──▶ delivered
           │  ◀─retryable failure (next_attempt_at = backoff)
           └──terminal 4xx, or budget spent──▶ dead ──redeliver──▶ pending

    ``public_id`` is the stable ``webhook-id``: every attempt of one delivery carries it, so a
    receiver deduplicates on it. Poll deliveries are never sent; they order the resolutions feed.
    """

    public_id = models.CharField(max_length=40, unique=True)
    workflow = models.ForeignKey("exceptions_app.Workflow", on_delete=models.PROTECT, related_name="deliveries")
    item = models.ForeignKey(
        "exceptions_app.ExceptionItem", null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    decision = models.ForeignKey(
        "exceptions_app.GateDecision", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    kind = models.CharField(max_length=12, choices=TargetKind.choices)
    target = models.CharField(max_length=2000, blank=True)
    target_queue = models.CharField(max_length=200, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # An attempt in progress holds this lease; a worker killed mid-attempt lets it lapse.
    leased_until = models.DateTimeField(null=True, blank=True)
    give_up_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending") & ~models.Q(kind="poll"),
                name="delivery_due",
            ),
            models.Index(fields=["workflow", "id"], name="delivery_feed"),
            models.Index(fields=["dead_at"], condition=models.Q(status="dead"), name="delivery_dead"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.public_id} ({self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


class FeedCursor(models.Model):
    """How far an agent has read (and so acknowledged) the resolutions feed."""

    principal = models.OneToOneField("exceptions_app.Principal", on_delete=models.CASCADE, related_name="feed_cursor")
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.principal} at {self.position}"
