"""Replays too large to answer within a request: a row, a worker that fills it in, a day's keep."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.db import DatabaseCache
from django.db import transaction
from django.utils import timezone

from exceptions_app.models import ReplayRun, ReplayStatus, Workflow
from exceptions_app.services.replay import ReplayWindow, policy_replay

logger = logging.getLogger(__name__)


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
    report = None if isinstance(cache, DatabaseCache) else _progress_reporter(run_id)
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


def _progress_reporter(run_id: int):
    timeout = settings.TOLLGATE_REPLAY_KEEP_HOURS * 3600

    def report(done: int) -> None:
        cache.set(_progress_key(run_id), done, timeout)

    return report


def replay_run_progress(run: ReplayRun) -> int:
    """Decisions replayed so far."""
    if run.status == ReplayStatus.DONE:
        return run.decisions_total
    if run.status == ReplayStatus.QUEUED:
        return 0
    return int(cache.get(_progress_key(run.pk)) or 0)


def replays_purge(*, now: datetime | None = None) -> int:
    """Delete replay runs past their keep."""
    return ReplayRun.objects.filter(expires_at__lt=now or timezone.now()).delete()[0]
