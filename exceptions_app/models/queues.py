from django.db import models


class Queue(models.Model):
    """Where held items wait for the teams allowed to work them."""

    name = models.SlugField(max_length=64, unique=True)
    teams = models.ManyToManyField("exceptions_app.Team", blank=True, related_name="queues")
    sla_seconds = models.PositiveIntegerField(default=3600)
    escalation_queue = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Optional per-queue weights over the default priority formula, e.g. {"value_at_risk": 2}.
    priority_weights = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
