"""A real prefork worker keeps its PostgreSQL sessions across tasks.

Celery's Django fixup closed Django's connection pool around every task (celery/celery#10554): each
task opened a new PostgreSQL session, which under the soak's load was most of PostgreSQL's CPU. The
fix (CELERY_DB_REUSE_MAX, and exceptions_app.celery handing connections back after each task) is
pinned here by counting the sessions the database saw while a worker ran tasks one after another."""

import time

import pytest
from django.db import connection

from exceptions_app.models import WorkerPing
from exceptions_app.tasks.health import worker_ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TASKS = 30


def _sessions_so_far() -> int:
    """Sessions PostgreSQL has counted on this database (a backend reports its own when it exits or goes idle)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _ping_and_wait(timeout: float = 20.0) -> None:
    ping = WorkerPing.objects.create()
    worker_ping.delay(ping.pk)
    deadline = time.monotonic() + timeout
    while not WorkerPing.objects.filter(pk=ping.pk, completed_at__isnull=False).exists():
        assert time.monotonic() < deadline, "the worker did not run the task in time"
        time.sleep(0.02)


def test_tasks_one_after_another_reuse_the_workers_sessions(celery_worker):
    if connection.vendor != "postgresql":
        pytest.skip("sessions are PostgreSQL's")
    _ping_and_wait()  # each child has connected once
    _ping_and_wait()
    before = _sessions_so_far()
    for _ in range(TASKS):
        _ping_and_wait()
    time.sleep(1.5)  # let exited backends' counts land
    opened = _sessions_so_far() - before
    # Two children, each may open a second connection once; one new session per task was the bug.
    assert opened <= 4, f"{opened} new PostgreSQL sessions for {TASKS} tasks"
