"""Celery tasks run in real worker processes on Redis, not in eager mode."""

import time

import pytest
from django.urls import reverse

from exceptions_app.celery import app as celery_app
from exceptions_app.models import WorkerHeartbeat, WorkerPing

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_task_enqueued_by_a_request_runs_in_a_real_worker(client, celery_worker):
    from exceptions_app.services.tokens import principal_ensure

    assert not celery_app.conf.task_always_eager
    assert celery_app.conf.broker_url.startswith("redis://")
    # The worker ping is for the people who run the queues (operators, supervisors).
    client.force_login(principal_ensure(name="pinger", role="operator").user)

    response = client.post(reverse("review:worker_ping"), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    ping = WorkerPing.objects.get()
    completed = wait_until(lambda: WorkerPing.objects.filter(pk=ping.pk, completed_at__isnull=False).first())
    # The hostname proves a separate worker process ran it, not this test process.
    assert completed.worker_hostname.startswith("test-worker@")


def test_beat_schedules_the_heartbeat_that_a_worker_runs(celery_worker, run_management_process, tmp_path):
    run_management_process(
        "beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "schedule"), TOLLGATE_HEARTBEAT_SECONDS="1"
    )

    beat = wait_until(lambda: WorkerHeartbeat.objects.filter(name="beat", beats__gte=2).first())

    assert beat.worker_hostname.startswith("test-worker@")
