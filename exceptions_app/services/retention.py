from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from exceptions_app.models import GateDecision

PURGE_BATCH = 5000


def decisions_purge(*, now: datetime | None = None, max_batches: int = 100) -> int:
    """Delete gate decisions older than TOLLGATE_DECISION_RETENTION_DAYS, in bounded batches.
    Items keep their captured state; their link to a purged decision becomes empty."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TOLLGATE_DECISION_RETENTION_DAYS)
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            GateDecision.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:PURGE_BATCH]
        )
        if not ids:
            break
        deleted += GateDecision.objects.filter(id__in=ids).delete()[0]
    return deleted
