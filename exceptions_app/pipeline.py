"""Is background work flowing? Per Celery queue: the workers seen consuming it and what waits for it.

A worker started with the wrong ``--queues`` raises no error anywhere: the work it skips just waits.
So each worker records the queues it consumes (``worker_consumer_record``, every
TOLLGATE_CONSUMER_HEARTBEAT_SECONDS, from ``exceptions_app.celery.ConsumerHeartbeat``), and
``pipeline_state`` compares that with the outbox (the database says what is pending) and with beat's
heartbeat, which runs on the ``periodic`` queue. The dashboard, ``/metrics``, ``/readyz?deep=1`` and
``manage.py check_pipeline`` all read it.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone
from kombu import Connection

from exceptions_app.models import Delivery, DeliveryStatus, TargetKind, WorkerConsumer, WorkerHeartbeat

logger = logging.getLogger(__name__)
# Rows of workers that vanished without stopping (killed) are kept this long, then deleted.
_FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class QueueState:
    name: str
    consumers: int
    # Messages waiting in the broker; None when the broker could not be asked.
    messages: int | None


@dataclass(frozen=True)
class PipelineState:
    queues: list[QueueState]
    outbox_pending: int
    outbox_oldest_age_seconds: float
    # How long the most overdue delivery has been due (0 when none is due).
    outbox_overdue_seconds: float
    # Since beat's heartbeat last ran on a worker; None before the first.
    periodic_last_ran_seconds: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def consumers(self, queue: str) -> int:
        return next((state.consumers for state in self.queues if state.name == queue), 0)


def worker_consumer_record(*, hostname: str, queues: list[str], pid: int, started_at: datetime) -> None:
    now = timezone.now()
    WorkerConsumer.objects.update_or_create(
        hostname=hostname, defaults={"queues": queues, "pid": pid, "started_at": started_at, "last_seen_at": now}
    )
    WorkerConsumer.objects.filter(last_seen_at__lt=now - _FORGET_AFTER).delete()


def worker_consumer_remove(*, hostname: str) -> None:
    WorkerConsumer.objects.filter(hostname=hostname).delete()


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def broker_connection() -> Connection:
    """A short-lived connection to Celery's broker that gives up after 2 s: for probes and counts."""
    return Connection(
        settings.CELERY_BROKER_URL,
        transport=settings.CELERY_BROKER_TRANSPORT,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=2,
    )


def _broker_messages(names: list[str]) -> dict[str, int | None]:
    counts: dict[str, int | None] = dict.fromkeys(names)
    try:
        with broker_connection() as broker:
            channel = broker.default_channel
            for name in names:
                try:
                    counts[name] = channel.queue_declare(queue=name, passive=True).message_count
                except Exception:  # a queue never declared yet holds nothing
                    counts[name] = 0
    except Exception as error:  # broker unreachable: /readyz says so; here the count is unknown
        logger.info("Could not count the broker's messages: %s", type(error).__name__)
    return counts


def _problems(state: PipelineState, *, beat_stale_after: float) -> list[str]:
    problems = []
    pending, waited = state.outbox_pending, duration_text(state.outbox_oldest_age_seconds)
    resolutions = f"{pending} resolution{'s' if pending != 1 else ''} waiting {waited}"
    if not state.consumers("deliveries"):
        problems.append(
            f"{resolutions}; no worker consumes `deliveries`"
            if pending
            else "No worker consumes `deliveries`: resolutions will not be delivered"
        )
    elif state.outbox_overdue_seconds > settings.TOLLGATE_PIPELINE_STUCK_SECONDS:
        problems.append(f"{resolutions}; a worker consumes `deliveries` but they are not going out (see its log)")
    if not state.consumers("periodic"):
        problems.append("No worker consumes `periodic`: sweeps, SLA escalation, snapshots and retries do not run")
    elif state.periodic_last_ran_seconds is None or state.periodic_last_ran_seconds > beat_stale_after:
        last = (
            "has not run yet"
            if state.periodic_last_ran_seconds is None
            else f"last ran {duration_text(state.periodic_last_ran_seconds)} ago"
        )
        problems.append(f"Celery beat's heartbeat {last}: is `celery beat` running?")
    if not state.consumers("default"):
        problems.append("No worker consumes `default`")
    return problems


def pipeline_state(*, now: datetime | None = None, ask_broker: bool = True) -> PipelineState:
    now = now or timezone.now()
    recent = now - timedelta(seconds=3 * settings.TOLLGATE_CONSUMER_HEARTBEAT_SECONDS)
    names = list(settings.TOLLGATE_CELERY_QUEUES)
    consumers = dict.fromkeys(names, 0)
    for queues in WorkerConsumer.objects.filter(last_seen_at__gte=recent).values_list("queues", flat=True):
        for name in queues:
            if name in consumers:
                consumers[name] += 1
    messages = _broker_messages(names) if ask_broker else dict.fromkeys(names)
    outbox = Delivery.objects.filter(status=DeliveryStatus.PENDING).exclude(kind=TargetKind.POLL)
    totals = outbox.aggregate(
        pending=Count("pk"),
        oldest=Min("created_at"),
        overdue=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
    )
    heartbeat = WorkerHeartbeat.objects.filter(name="beat").values_list("last_seen_at", flat=True).first()
    state = PipelineState(
        queues=[QueueState(name=name, consumers=consumers[name], messages=messages[name]) for name in names],
        outbox_pending=totals["pending"],
        outbox_oldest_age_seconds=max((now - totals["oldest"]).total_seconds(), 0.0) if totals["oldest"] else 0.0,
        outbox_overdue_seconds=max((now - totals["overdue"]).total_seconds(), 0.0) if totals["overdue"] else 0.0,
        periodic_last_ran_seconds=max((now - heartbeat).total_seconds(), 0.0) if heartbeat else None,
    )
    beat_stale_after = max(3 * settings.TOLLGATE_HEARTBEAT_SECONDS, 60)
    return PipelineState(**{**state.__dict__, "problems": _problems(state, beat_stale_after=beat_stale_after)})
