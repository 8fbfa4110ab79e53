from django.conf import settings
from django.db import models


class ItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


TERMINAL_STATUSES = frozenset({ItemStatus.RESOLVED, ItemStatus.CANCELLED, ItemStatus.EXPIRED})
ACTIVE_STATUSES = frozenset({ItemStatus.OPEN, ItemStatus.CLAIMED, ItemStatus.SNOOZED})


class SlaStage(models.IntegerChoices):
    ON_TIME = 0, "On time"
    NEAR = 1, "Due soon"
    BREACHED = 2, "Past due"


class ItemKind(models.TextChoices):
    HOLD = "hold", "Held by the gate"
    REPORTED = "reported", "Reported by an agent"
    # A copy of a verdict that proceeded (or was auto-rejected), sampled for a person to judge.
    AUDIT = "audit", "Sampled for audit"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Resolution(models.TextChoices):
    APPROVE = "approve", "Approved as proposed"
    MODIFY = "modify", "Approved with an edited output"
    REJECT = "reject", "Rejected"
    FALLBACK = "fallback", "Expired with the workflow's fallback"


class ExceptionItem(models.Model):
    """One held output or reported failure, with the state captured when it was raised.

    States::

        open ──claim──▶ claimed ──resolve──▶ resolved
         ▲  ◀─release/lease expiry─┘  │
         │                            └─escalate──▶ open (escalation queue, higher priority)
         ├──snooze──▶ snoozed ──wake──▶ open
         ├──cancel (agent)──▶ cancelled
         └──deadline──▶ expired (workflow fallback)

    Captured state (proposal, confidence, input, context, trace, interrupt, ...) is never updated; the
    resolution is stored beside it.
    """

    workflow = models.ForeignKey("exceptions_app.Workflow", on_delete=models.PROTECT, related_name="items")
    policy_version = models.ForeignKey("exceptions_app.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    decision = models.OneToOneField(
        "exceptions_app.GateDecision", null=True, blank=True, on_delete=models.SET_NULL, related_name="item"
    )
    agent = models.ForeignKey("exceptions_app.Principal", on_delete=models.PROTECT, related_name="raised_items")
    kind = models.CharField(max_length=8, choices=ItemKind.choices)

    # Captured state: immutable after creation.
    proposal = models.JSONField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    input = models.JSONField(null=True, blank=True)
    context = models.JSONField(null=True, blank=True)
    trace = models.JSONField(null=True, blank=True)
    # LangGraph's HumanInterrupt, when the agent paused a graph on this output (exceptions_app/interrupts.py).
    interrupt = models.JSONField(null=True, blank=True)
    model_version = models.CharField(max_length=200, blank=True)
    correlation_id = models.CharField(max_length=200, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL means "no key"
    request_fingerprint = models.CharField(max_length=64, blank=True)
    reasons = models.JSONField(default=list)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    value_at_risk = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    # For an audit item: the probability its verdict was drawn with (estimates weigh it by 1/p).
    sampling_probability = models.FloatField(null=True, blank=True)
    # The W3C traceparent of the span that raised it, when tracing is on: its wait, handling and
    # deliveries join the agent's trace (exceptions_app/tracing/spans.py). Not captured state.
    traceparent = models.CharField(max_length=55, blank=True, default="", db_default="")

    # Queue position.
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    queue = models.ForeignKey("exceptions_app.Queue", on_delete=models.PROTECT, related_name="items")
    priority = models.IntegerField(default=0)
    due_at = models.DateTimeField()
    snoozed_until = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    sla_stage = models.PositiveSmallIntegerField(choices=SlaStage.choices, default=SlaStage.ON_TIME)
    sla_near_at = models.DateTimeField()

    # Claim lease.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="claimed_items"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)

    # Resolution, stored beside the captured state.
    resolution = models.CharField(max_length=10, choices=Resolution.choices, blank=True)
    final_output = models.JSONField(null=True, blank=True)
    reason_code = models.CharField(max_length=64, blank=True)
    resolution_note = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="resolved_items"
    )

    # Step timestamps for latency.
    raised_at = models.DateTimeField()
    queued_at = models.DateTimeField()
    first_claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False, kind="reported"),
                name="reported_item_idempotency_key_unique_per_agent",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="claimed")
                | models.Q(claimed_by__isnull=False, claim_expires_at__isnull=False),
                name="claimed_item_has_claimant_and_lease",
            ),
        ]
        indexes = [
            # Serves claim-next exactly: open items of a queue in claim order.
            models.Index(
                "queue",
                models.F("priority").desc(),
                "due_at",
                "id",
                condition=models.Q(status="open"),
                name="item_claim_order",
            ),
            models.Index(fields=["status", "workflow"], name="item_status_workflow"),
            # Judged holds and audits of a workflow in a window: the accountability estimates.
            models.Index(
                fields=["workflow", "raised_at"],
                condition=models.Q(status="resolved", kind__in=["hold", "audit"]),
                name="item_judged",
            ),
            # Flow counts for snapshots: arrivals, completions and breaches in a time window.
            models.Index(fields=["raised_at"], name="item_raised_at"),
            models.Index(
                fields=["resolved_at"], condition=models.Q(resolved_at__isnull=False), name="item_resolved_at"
            ),
            models.Index(
                fields=["sla_breached_at"],
                condition=models.Q(sla_breached_at__isnull=False),
                name="item_sla_breached_at",
            ),
            # Covers the live counts (depth, claims, claimers per queue) without reading the wide rows.
            models.Index(
                fields=["queue", "status", "queued_at"],
                include=["claimed_by", "id"],
                condition=models.Q(status__in=["open", "claimed", "snoozed"]),
                name="item_live_by_queue",
            ),
            # Serves the SLA, snooze, lease and deadline jobs: only live items are indexed.
            models.Index(
                fields=["due_at"], condition=models.Q(status__in=["open", "claimed", "snoozed"]), name="item_active_due"
            ),
            models.Index(
                fields=["sla_near_at"],
                condition=models.Q(status__in=["open", "claimed", "snoozed"], sla_stage=0),
                name="item_sla_near",
            ),
            models.Index(fields=["claim_expires_at"], condition=models.Q(status="claimed"), name="item_claim_lease"),
            models.Index(fields=["snoozed_until"], condition=models.Q(status="snoozed"), name="item_snoozed_until"),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(status__in=["open", "claimed", "snoozed"], expires_at__isnull=False),
                name="item_active_deadline",
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES
