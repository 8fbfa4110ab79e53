"""Replays too large to answer within a request: a row, a worker that fills it in, a day's keep."""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.db import DatabaseCache
from django.db import transaction
from django.utils import timezone

from exceptions_app.models import ReplayRun, ReplayStatus, Workflow
from exceptions_app.services.replay import ReplayWindow, policy_replay

logger = logging.getLogger(__name__)
# The worker task's hard time limit: past it, Celery has killed the replay whatever it reported.
TIME_LIMIT_SECONDS = 3600


def _progress_key(run_id: int) -> str:
    return f"replay-progress:{run_id}"


def replay_run_start(
    *, workflow: Workflow, document: dict, window: ReplayWindow, total: int, sample_limit: int, actor
) -> ReplayRun:
    """Record a replay for a worker to run (``document`` already checked by replay_draft_check)."""
    now = timezone.now()
    with transaction.atomic():
        run = ReplayRun.objects.create(
            workflow=workflow,
            requested_by=actor,
            document=document,
            since=window.since,
            until=window.until,
            limit=window.limit,
            sample_limit=sample_limit,
            decisions_total=total,
            created_at=now,
            expires_at=now + timedelta(hours=settings.TOLLGATE_REPLAY_KEEP_HOURS),
        )
        from exceptions_app.tasks.replay import replay_run_execute

        transaction.on_commit(lambda: replay_run_execute.delay(run.pk))
    return run


def replay_run_execute(*, run_id: int) -> str:
    """Run a queued replay; a run already started or finished (a redelivered task) is left alone."""
    started = ReplayRun.objects.filter(pk=run_id, status=ReplayStatus.QUEUED).update(
        status=ReplayStatus.RUNNING, started_at=timezone.now()
    )
    if not started:
        return "not queued"
    run = ReplayRun.objects.select_related("workflow__current_policy").get(pk=run_id)
    # Progress goes to the cache: the replay's own transaction is read-only, and a database cache
    # would write inside it, so with that backend progress shows only at the end.
    report = _progress_reporter(run_id) if _reports_progress() else None
    try:
        result = policy_replay(
            workflow=run.workflow,
            document=run.document,
            window=ReplayWindow(since=run.since, until=run.until, limit=run.limit),
            sample_limit=run.sample_limit,
            progress=report,
        )
    except Exception as error:
        logger.exception("replay %s failed", run_id)
        ReplayRun.objects.filter(pk=run_id).update(
            status=ReplayStatus.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        return "failed"
    ReplayRun.objects.filter(pk=run_id).update(
        status=ReplayStatus.DONE,
        result=result,
        decisions_total=result["decisions"],
        finished_at=timezone.now(),
    )
    return "done"


def _reports_progress() -> bool:
    return not isinstance(cache, DatabaseCache)


def _progress_reporter(run_id: int):
    timeout = settings.TOLLGATE_REPLAY_KEEP_HOURS * 3600

    def report(done: int) -> None:
        # Also the worker's heartbeat: a run whose progress stops moving has lost its worker.
        cache.set(_progress_key(run_id), {"done": done, "at": time.time()}, timeout)

    report(0)
    return report


def replay_run_progress(run: ReplayRun) -> int:
    """Decisions replayed so far."""
    if run.status == ReplayStatus.DONE:
        return run.decisions_total
    if run.status == ReplayStatus.QUEUED:
        return 0
    return int(_progress_of(run.pk).get("done", 0))


def _progress_of(run_id: int) -> dict:
    progress = cache.get(_progress_key(run_id))
    return progress if isinstance(progress, dict) else {}


def _stale_reason(run: ReplayRun, *, now: datetime) -> str | None:
    """Why a running replay is taken for dead, or None while its worker may still be at it. With a
    progress cache, the last progress is the worker's heartbeat; without one (the database cache),
    only the task's time limit tells."""
    if _reports_progress():
        beat = _progress_of(run.pk).get("at")
        last = max(run.started_at.timestamp(), beat or 0.0)
        quiet = now.timestamp() - last
        if quiet > settings.TOLLGATE_REPLAY_STALE_SECONDS:
            return (
                f"its worker stopped: no progress for {quiet:.0f} s (more than {settings.TOLLGATE_REPLAY_STALE_SECONDS}"
                " s; the worker was killed or restarted). Start the replay again."
            )
        return None
    if now - run.started_at > timedelta(seconds=TIME_LIMIT_SECONDS + 60):
        return f"its worker stopped: still running past the {TIME_LIMIT_SECONDS} s time limit. Start the replay again."
    return None


def replays_fail_stale(*, now: datetime | None = None) -> int:
    """Mark failed, with the reason, the running replays whose worker died (they would otherwise
    stay "running" until purged). A worker that was only slow and finishes later still records
    its answer."""
    now = now or timezone.now()
    failed = 0
    for run in ReplayRun.objects.filter(status=ReplayStatus.RUNNING, started_at__isnull=False):
        reason = _stale_reason(run, now=now)
        if reason is not None:
            failed += ReplayRun.objects.filter(pk=run.pk, status=ReplayStatus.RUNNING).update(
                status=ReplayStatus.FAILED, error=reason, finished_at=now
            )
            logger.warning("replay %s marked failed: %s", run.pk, reason)
    return failed


def replays_purge(*, now: datetime | None = None) -> int:
    """Delete replay runs past their keep."""
    return ReplayRun.objects.filter(expires_at__lt=now or timezone.now()).delete()[0]
