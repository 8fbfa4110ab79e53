"""POST /api/v1/workflows/{name}/replay and GET /api/v1/replays/{id}: small windows answer at
once, large ones run on a real Celery worker with progress, and bad drafts are 400s that name
the rule and the parser's message."""

import random
import time
from datetime import timedelta
from types import SimpleNamespace

import cel
import pytest
from django.utils import timezone

from exceptions_app.models import GateDecision, ReplayRun, ReplayStatus, Workflow
from exceptions_app.services import replay_runs
from exceptions_app.services.replay import ReplayWindow, policy_replay
from exceptions_app.services.replay_runs import replays_fail_stale, replays_purge
from tests.fixtures.gate import BILLING, billing_document
from tests.fixtures.replay import changed_draft, live_tables_state, submit_batches, varied_body

URL = f"/api/v1/workflows/{BILLING}/replay"


def _history(agent_client, count: int) -> None:
    rng = random.Random(5)
    submit_batches(agent_client, [varied_body(rng, index) for index in range(count)])


@pytest.mark.django_db
def test_a_small_window_is_answered_at_once(agent_client, supervisor_client):
    _history(agent_client, 200)
    before = live_tables_state()

    response = supervisor_client.post(URL, {"policy": changed_draft(), "limit": 150, "samples": 5}, format="json")

    assert response.status_code == 200, response.content[:500]
    answer = response.json()
    assert answer["workflow"] == BILLING
    assert answer["decisions"] == 150
    assert set(answer["matrix"]) == {"proceed", "hold", "reject"}
    assert sum(sum(row.values()) for row in answer["matrix"].values()) == 150
    assert {"code", "current", "draft"} <= set(answer["rules"][0])
    assert set(answer["review_rate"]) == {"current", "draft"}
    assert "would_leak" in answer
    assert len(answer["samples"]) <= 5
    assert live_tables_state() == before


@pytest.mark.django_db
def test_the_draft_may_leave_out_the_workflow_name(agent_client, supervisor_client):
    _history(agent_client, 20)
    draft = {key: value for key, value in billing_document().items() if key != "workflow"}

    response = supervisor_client.post(URL, {"policy": draft}, format="json")

    assert response.status_code == 200
    assert response.json()["decisions"] == 20
    assert response.json()["changed"] == 0


@pytest.mark.django_db
def test_an_invalid_draft_is_400_naming_the_rule_and_the_parser_message(supervisor_client, billing_workflow):
    draft = billing_document()
    draft["rules"][1]["when"] = "output.amount >> 3"
    with pytest.raises(ValueError, match=r"\w") as parser:
        cel.compile("output.amount >> 3")

    response = supervisor_client.post(URL, {"policy": draft}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    field = error["fields"][0]
    assert field["rule"] == "credit_exceeds_invoice"
    assert field["path"] == "policy.rules[1].when"
    assert str(parser.value) in field["message"]
    assert "credit_exceeds_invoice" in error["message"]


@pytest.mark.django_db
def test_a_draft_that_is_not_a_policy_is_400_naming_the_field(supervisor_client, billing_workflow):
    response = supervisor_client.post(URL, {"policy": {"thresholds": {"auto_approve": 2}}}, format="json")

    assert response.status_code == 400
    paths = [field["path"] for field in response.json()["error"]["fields"]]
    assert any(path.startswith("policy") for path in paths), paths


@pytest.mark.django_db
def test_an_unknown_workflow_or_replay_is_404(supervisor_client, billing_workflow):
    assert supervisor_client.post("/api/v1/workflows/no.such/replay", {"policy": {}}, format="json").status_code == 404
    assert supervisor_client.get("/api/v1/replays/999999").status_code == 404
    assert supervisor_client.get(f"/api/v1/replays/{2**70}").status_code == 404


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_large_window_runs_on_a_worker_with_progress_and_keeps_its_answer(
    agent_client, supervisor_client, celery_worker, settings
):
    _history(agent_client, 1200)
    settings.TOLLGATE_REPLAY_SYNC_MAX = 100
    before = live_tables_state()

    response = supervisor_client.post(URL, {"policy": changed_draft(), "samples": 10}, format="json")

    assert response.status_code == 202, response.content[:500]
    started = response.json()
    assert started["status"] in ("queued", "running", "done")
    assert started["decisions_total"] == 1200
    assert response["Location"] == started["url"]
    deadline, seen = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        run = supervisor_client.get(started["url"]).json()
        seen.append(run["decisions_done"])
        if run["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert run["status"] == "done", run
    assert run["decisions_done"] == 1200
    assert seen == sorted(seen)
    expected = policy_replay(
        workflow=Workflow.objects.get(name=BILLING), document=changed_draft(), window=ReplayWindow(), sample_limit=10
    )
    result = run["result"]
    assert (result["matrix"], result["rules"], result["would_leak"]) == (
        expected["matrix"],
        expected["rules"],
        expected["would_leak"],
    )
    assert live_tables_state() == before
    stored = ReplayRun.objects.get(pk=started["id"])
    assert stored.expires_at - stored.created_at == timedelta(hours=24)


@pytest.mark.django_db
def test_replay_runs_are_purged_after_their_keep(supervisor_client, billing_workflow):
    now = timezone.now()
    kept, gone = (
        ReplayRun.objects.create(
            workflow=billing_workflow,
            document=billing_document(),
            status=ReplayStatus.DONE,
            result={},
            created_at=now - age,
            expires_at=now - age + timedelta(hours=24),
        )
        for age in (timedelta(hours=1), timedelta(hours=25))
    )

    assert replays_purge(now=now) == 1

    assert supervisor_client.get(f"/api/v1/replays/{kept.pk}").status_code == 200
    assert supervisor_client.get(f"/api/v1/replays/{gone.pk}").status_code == 404


@pytest.mark.django_db
def test_no_window_means_the_last_seven_days_for_the_count_and_the_replay(agent_client, supervisor_client, settings):
    _history(agent_client, 30)
    old = list(GateDecision.objects.order_by("id").values_list("id", flat=True)[:10])
    GateDecision.objects.filter(id__in=old).update(created_at=timezone.now() - timedelta(days=8))
    settings.TOLLGATE_REPLAY_SYNC_MAX = 20

    response = supervisor_client.post(URL, {"policy": billing_document()}, format="json")

    assert response.status_code == 200, "20 decisions in the window: answered at once"
    assert response.json()["decisions"] == 20


@pytest.mark.django_db
def test_a_replay_whose_worker_died_is_marked_failed_with_the_reason(
    supervisor_client, billing_workflow, settings, monkeypatch
):
    """A worker killed mid-replay never writes its row: the run would stay "running" until purged.
    Its progress (the worker's heartbeat) stops; past TOLLGATE_REPLAY_STALE_SECONDS the sweep fails it."""
    now = timezone.now()
    dead, alive = (
        ReplayRun.objects.create(
            workflow=billing_workflow,
            document=billing_document(),
            status=ReplayStatus.RUNNING,
            decisions_total=100_000,
            created_at=now - timedelta(minutes=20),
            started_at=now - timedelta(minutes=20),
            expires_at=now + timedelta(hours=23),
        )
        for _ in range(2)
    )
    limit = settings.TOLLGATE_REPLAY_STALE_SECONDS
    last_beat = now.timestamp() - limit + 5  # the dead worker's last chunk, just inside the limit
    monkeypatch.setattr(replay_runs, "time", SimpleNamespace(time=lambda: last_beat))
    replay_runs._progress_reporter(dead.pk)(4000)
    monkeypatch.undo()
    replay_runs._progress_reporter(alive.pk)(4000)  # a live worker, reporting now

    assert replays_fail_stale(now=now) == 0
    assert replays_fail_stale(now=now + timedelta(seconds=10)) == 1

    answer = supervisor_client.get(f"/api/v1/replays/{dead.pk}").json()
    assert answer["status"] == "failed"
    assert "worker stopped: no progress for" in answer["error"]
    assert supervisor_client.get(f"/api/v1/replays/{alive.pk}").json()["status"] == "running"
    assert replays_fail_stale(now=now + timedelta(seconds=10)) == 0  # failed once
