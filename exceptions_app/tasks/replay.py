"""Policy replays too large for a request. A run is claimed by a conditional update, so a
redelivered message finds it started and returns."""

from celery import shared_task

from exceptions_app.services import replay_runs


# A million decisions take about a minute; the limits leave room on a busy machine.
@shared_task(ignore_result=True, time_limit=replay_runs.TIME_LIMIT_SECONDS, soft_time_limit=3500)
def replay_run_execute(run_id: int) -> str:
    return replay_runs.replay_run_execute(run_id=run_id)
