"""Workers consume every queue by default, and the system says when work has no consumer.

Real worker and beat processes on the test database and Redis: a worker started with the plain
command delivers resolutions and runs the periodic jobs; one started with `--queues default` leaves
deliveries waiting, which the pipeline check, /readyz?deep=1, /metrics and the dashboard all say, until
a full worker runs."""

import io
import os

import pytest
import redis
from django.core.management import call_command
from django.test import Client

from exceptions_app.models import QueueSnapshot, WorkerConsumer, WorkerHeartbeat
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import hold
from tests.fixtures.workers import drain, stop, wait_for_line
from tests.test_delivery_flow import FAST, resolve, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
QUICK = {**FAST, "TOLLGATE_CONSUMER_HEARTBEAT_SECONDS": "1"}


def start_worker(run_management_process, name: str, *queues: str, **environment: str):
    """`celery -A exceptions_app worker` with only what a test needs (a log line to wait for, one child)."""
    process = run_management_process(
        "worker", "--loglevel", "INFO", "--concurrency", "1", "--hostname", f"{name}@%h", *queues, **environment
    )
    banner = "".join(wait_for_line(process, "ready."))
    drain(process)
    return process, banner


def check_pipeline() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_pipeline", stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


def supervisor_browser() -> Client:
    client = Client()
    client.force_login(principal_ensure(name="sam", role="supervisor").user)
    return client


@pytest.fixture
def fresh_broker():
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def test_a_worker_started_with_the_plain_command_delivers_and_runs_periodic_jobs(
    fresh_broker, agent_client, operator_client, receiver, run_management_process, tmp_path
):
    _, banner = start_worker(run_management_process, "plain", **QUICK)
    run_management_process(
        "beat",
        "--schedule",
        str(tmp_path / "schedule"),
        **{**QUICK, "TOLLGATE_HEARTBEAT_SECONDS": "1", "TOLLGATE_SNAPSHOT_SECONDS": "5"},
    )
    assert all(f".> {queue} " in banner for queue in ("default", "deliveries", "periodic")), banner

    items = [hold(agent_client, callback_url=receiver.url) for _ in range(5)]
    for item_id in items:
        resolve(operator_client, item_id)

    receiver.wait_for(lambda r: len(set(r.delivery_ids())) == 5, timeout=30)
    beat = wait_until(lambda: WorkerHeartbeat.objects.filter(name="beat", beats__gte=2).first(), timeout=30)
    assert beat.worker_hostname.startswith("plain@")
    assert wait_until(lambda: QueueSnapshot.objects.exists(), timeout=30)


def test_work_without_a_consumer_is_reported_until_a_full_worker_runs(
    fresh_broker, agent_client, operator_client, receiver, run_management_process, tmp_path
):
    start_worker(run_management_process, "partial", "--queues", "default", **QUICK)
    wait_until(lambda: WorkerConsumer.objects.filter(hostname__startswith="partial@", queues=["default"]).exists())
    items = [hold(agent_client, callback_url=receiver.url) for _ in range(3)]
    for item_id in items:
        resolve(operator_client, item_id)

    code, output = check_pipeline()
    assert code == 1
    assert "3 resolutions waiting" in output
    assert "no worker consumes `deliveries`" in output
    assert "No worker consumes `periodic`" in output
    deep = Client().get("/readyz?deep=1")
    assert deep.status_code == 503
    assert deep.json()["pipeline"]["consumers"] == {"default": 1, "deliveries": 0, "periodic": 0}
    assert Client().get("/readyz").status_code == 200  # this process is fine: readiness stays about it
    metrics = Client().get("/metrics").content.decode()
    assert 'tollgate_queue_consumers{queue="deliveries"} 0.0' in metrics
    assert "tollgate_outbox_pending 3.0" in metrics
    page = supervisor_browser().get("/dashboard").content.decode()
    assert "Background work is not flowing" in page
    assert "no worker consumes `deliveries`" in page
    assert receiver.received == []

    full, _ = start_worker(run_management_process, "full", **QUICK)
    run_management_process(
        "beat", "--schedule", str(tmp_path / "schedule"), **{**QUICK, "TOLLGATE_HEARTBEAT_SECONDS": "1"}
    )

    receiver.wait_for(lambda r: len(set(r.delivery_ids())) == 3, timeout=30)
    wait_until(lambda: WorkerHeartbeat.objects.filter(name="beat").exists(), timeout=30)
    code, output = wait_until(lambda: (result := check_pipeline())[0] == 0 and result, timeout=30)
    assert "pipeline ok" in output
    assert Client().get("/readyz?deep=1").status_code == 200
    assert "Background work is not flowing" not in supervisor_browser().get("/dashboard").content.decode()
    assert "tollgate_outbox_pending 0.0" in Client().get("/metrics").content.decode()

    stop(full)  # a worker that stops says so at once: its consumer record goes with it
    assert not WorkerConsumer.objects.filter(hostname__startswith="full@").exists()
    assert check_pipeline()[0] == 1
