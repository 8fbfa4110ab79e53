"""Beat jobs. Each is idempotent (it works from the database's state), so acks_late is safe."""

from celery import shared_task

from exceptions_app import stats
from exceptions_app.capacity.report import capacity_reports_warm
from exceptions_app.services import replay_runs, retention, snapshots, sweeps, tallies

PERIODIC = {"ignore_result": True, "acks_late": True, "reject_on_worker_lost": True}


@shared_task(**PERIODIC)
def claims_expire() -> int:
    return sweeps.claims_expire()


@shared_task(**PERIODIC)
def snoozes_wake() -> int:
    return sweeps.snoozes_wake()


@shared_task(**PERIODIC)
def sla_escalate() -> int:
    return sweeps.sla_escalate()


@shared_task(**PERIODIC)
def items_expire() -> int:
    return sweeps.items_expire()


@shared_task(**PERIODIC)
def decisions_purge() -> int:
    return retention.decisions_purge()


@shared_task(**PERIODIC)
def snapshots_take() -> int:
    taken = snapshots.snapshots_take()
    stats.chart_rows_warm()
    capacity_reports_warm()
    return taken


@shared_task(**PERIODIC)
def snapshots_purge() -> int:
    return snapshots.snapshots_purge()


@shared_task(**PERIODIC)
def tallies_advance() -> dict:
    advanced = tallies.tallies_advance()
    stats.rollup_figures_warm()
    return advanced


@shared_task(**PERIODIC)
def replays_purge() -> int:
    return replay_runs.replays_purge()


@shared_task(**PERIODIC)
def replays_fail_stale() -> int:
    return replay_runs.replays_fail_stale()
