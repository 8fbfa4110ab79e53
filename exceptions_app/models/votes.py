from django.conf import settings
from django.db import models


class VotePurpose(models.TextChoices):
    # One of the N approvals a policy's ``approvals`` rule asks for (four eyes).
    APPROVAL = "approval", "Approval"
    # One of the k independent judgements a policy's ``blind_review`` asks for.
    JUDGEMENT = "judgement", "Blind judgement"


class Vote(models.Model):
    """One person's say on an item that needs more than one: an approval (or a rejection) towards
    N-of-M, or a blind judgement. The item's resolution is written only when the votes settle it.

    The constraints are what make concurrent votes safe without trusting the caller: one vote per
    person per item, one vote per seat (the first, second, ... vote of its purpose: two voters racing
    for the last seat cannot both take it), and, when a policy asks for distinct teams, one vote per
    team. A ``modify`` deletes the approvals gathered so far (their audit events stay)."""

    item = models.ForeignKey("exceptions_app.ExceptionItem", on_delete=models.CASCADE, related_name="votes")
    purpose = models.CharField(max_length=10, choices=VotePurpose.choices)
    seat = models.PositiveSmallIntegerField()
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The team the vote counts for, only under ``distinct: teams``.
    team = models.ForeignKey("exceptions_app.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    resolution = models.CharField(max_length=10)  # approve, modify or reject (models.Resolution)
    output = models.JSONField(null=True, blank=True)  # the edited output of a modify
    reason_code = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "voter"], name="vote_one_per_person"),
            models.UniqueConstraint(fields=["item", "purpose", "seat"], name="vote_one_per_seat"),
            models.UniqueConstraint(
                fields=["item", "team"], condition=models.Q(team__isnull=False), name="vote_one_per_team"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.seat} on item {self.item_id}: {self.resolution}"
