"""Compact tables the dashboard and /metrics read instead of scanning items and decisions."""

from django.db import models


class QueueSnapshot(models.Model):
    """One queue at one tick of the snapshot job. Flows (arrivals, completions, breaches) count
    what happened since the previous tick."""

    queue = models.ForeignKey("exceptions_app.Queue", on_delete=models.CASCADE, related_name="snapshots")
    taken_at = models.DateTimeField()
    depth = models.PositiveIntegerField()
    claimed = models.PositiveIntegerField()
    snoozed = models.PositiveIntegerField()
    oldest_age_seconds = models.FloatField(null=True)
    p50_age_seconds = models.FloatField(null=True)
    p95_age_seconds = models.FloatField(null=True)
    arrivals = models.PositiveIntegerField()
    completions = models.PositiveIntegerField()
    sla_breaches = models.PositiveIntegerField()
    # Waiting items by age, counts per upper bound of AGE_BUCKETS (the last bound is +Inf).
    age_buckets = models.JSONField(default=list)
    # For the capacity model: resolutions since the previous tick with a handling time (first claim
    # to resolution), its sum and sum of squares (mean and spread without keeping every value), and
    # who resolved or held a claim in the queue during the tick (user ids).
    handled = models.PositiveIntegerField(default=0)
    handling_seconds_sum = models.FloatField(default=0)
    handling_seconds_squares = models.FloatField(default=0)
    operator_ids = models.JSONField(default=list)

    class Meta:
        indexes = [
            models.Index(fields=["queue", "-taken_at"], name="snapshot_queue_time"),
            models.Index(fields=["taken_at"], name="snapshot_time"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id} @ {self.taken_at:%H:%M}: {self.depth}"


class DecisionHourly(models.Model):
    """Gate decisions per hour, workflow, verdict and confidence band (tallied from decision ids)."""

    hour = models.DateTimeField()
    workflow = models.ForeignKey("exceptions_app.Workflow", on_delete=models.CASCADE, related_name="+")
    verdict = models.CharField(max_length=8)
    band = models.CharField(max_length=9)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "workflow", "verdict", "band"], name="decision_hourly_key")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.verdict} {self.count}"


class ResolutionHourly(models.Model):
    """Resolutions per hour, workflow, outcome and confidence band, with latency histograms
    (counts per upper bound in LATENCY_BUCKETS) for waiting and handling."""

    hour = models.DateTimeField()
    workflow = models.ForeignKey("exceptions_app.Workflow", on_delete=models.CASCADE, related_name="+")
    resolver = models.CharField(max_length=150)
    outcome = models.CharField(max_length=10)
    band = models.CharField(max_length=9)
    count = models.PositiveBigIntegerField(default=0)
    waiting_buckets = models.JSONField(default=list)
    handling_buckets = models.JSONField(default=list)
    waiting_seconds_sum = models.FloatField(default=0)
    handling_seconds_sum = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "workflow", "resolver", "outcome", "band"], name="resolution_hourly_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.outcome} {self.count}"


class DeliveryHourly(models.Model):
    """Delivery attempts per hour and outcome, with the resolved-to-delivered latency histogram."""

    hour = models.DateTimeField()
    outcome = models.CharField(max_length=16)
    count = models.PositiveBigIntegerField(default=0)
    latency_buckets = models.JSONField(default=list)
    latency_seconds_sum = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "outcome"], name="delivery_hourly_key")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.outcome} {self.count}"


class TallyCursor(models.Model):
    """How far each tally has read its source table (by id, which only grows)."""

    name = models.CharField(max_length=32, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_id}"


class HistogramTotal(models.Model):
    """All-time latency histogram of one stage (waiting, handling, delivery), kept by the tallies
    so /metrics reads three rows instead of every hourly row."""

    stage = models.CharField(max_length=16, unique=True)
    buckets = models.JSONField(default=list)
    seconds_sum = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.stage}: {sum(self.buckets or [])}"
