from celery import shared_task
from django.db.models import F
from django.utils import timezone

from exceptions_app.models import WorkerHeartbeat, WorkerPing


@shared_task(bind=True, ignore_result=True)
def heartbeat(self) -> None:
    """Run by beat every TOLLGATE_HEARTBEAT_SECONDS; the home page shows its last run."""
    now = timezone.now()
    hostname = self.request.hostname or ""
    updated = WorkerHeartbeat.objects.filter(name="beat").update(
        beats=F("beats") + 1, last_seen_at=now, worker_hostname=hostname
    )
    if not updated:
        WorkerHeartbeat.objects.get_or_create(
            name="beat", defaults={"beats": 1, "last_seen_at": now, "worker_hostname": hostname}
        )


@shared_task(bind=True, ignore_result=True)
def worker_ping(self, ping_id: int) -> None:
    # Idempotent: a redelivered ping that already completed is left alone.
    WorkerPing.objects.filter(pk=ping_id, completed_at__isnull=True).update(
        completed_at=timezone.now(), worker_hostname=self.request.hostname or ""
    )
