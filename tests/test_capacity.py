"""Capacity from real snapshots: what a tick records, what the API and the dashboard panel answer,
what-if parameters and their bad values, the gauges /metrics exports for the alerting rules."""

import math
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from exceptions_app.capacity import erlang
from exceptions_app.capacity.report import capacity_reports_warm
from exceptions_app.capacity.simulation import simulate_queue
from exceptions_app.models import ExceptionItem, Queue, QueueSnapshot
from exceptions_app.services.snapshots import AGE_BUCKETS, snapshots_take
from tests.fixtures.gate import hold
from tests.fixtures.snapshots import queue_snapshot
from tests.test_dashboard import PASSWORD, person
from tests.test_metrics import scrape

pytestmark = pytest.mark.django_db

FIELDS = {
    "queue",
    "arrival_rate_per_hour",
    "service_rate_per_operator_per_hour",
    "operators",
    "utilisation",
    "predicted_wait_seconds",
    "sla_attainment",
    "breach_eta_seconds",
    "drain_eta_seconds",
    "operators_needed",
    "model",
}


def record_ticks(
    queue_name: str,
    *,
    minutes: int = 60,
    arrivals=(0, 2),
    handling: float = 120.0,
    operators=(1, 2),
    depth: int = 0,
    end=None,
) -> None:
    """One snapshot a minute for ``minutes`` up to ``end``: arrivals cycling through ``arrivals``, one
    item handled per tick with exponential-like spread (sum of squares 2 x mean squared)."""
    queue = Queue.objects.get(name=queue_name)
    end = end or timezone.now()
    rows = [
        queue_snapshot(
            queue,
            taken_at=end - timedelta(minutes=minutes - minute),
            depth=depth,
            oldest_age_seconds=60.0 if depth else None,
            age_buckets=[depth] + [0] * (len(AGE_BUCKETS) - 1),
            arrivals=arrivals[minute % len(arrivals)],
            completions=1,
            handled=1,
            handling_seconds_sum=handling,
            handling_seconds_squares=2 * handling * handling,
            operator_ids=list(operators),
        )
        for minute in range(minutes + 1)
    ]
    QueueSnapshot.objects.bulk_create(rows)


def billing_row(response) -> dict:
    assert response.status_code == 200, response.content[:500]
    return next(row for row in response.json()["queues"] if row["queue"] == "billing")


def test_a_snapshot_records_handling_times_and_who_worked_the_queue(
    agent_client, operator_client, second_operator_client
):
    now = timezone.now()
    first, second, third = hold(agent_client), hold(agent_client), hold(agent_client)
    for item_id in (first, second):
        operator_client.post(f"/api/v1/exceptions/{item_id}/claim")
        operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")
    second_operator_client.post(f"/api/v1/exceptions/{third}/claim")
    ExceptionItem.objects.filter(pk=first).update(first_claimed_at=now - timedelta(seconds=100), resolved_at=now)
    ExceptionItem.objects.filter(pk=second).update(first_claimed_at=now - timedelta(seconds=300), resolved_at=now)
    queue_snapshot("billing", taken_at=now - timedelta(minutes=1)).save()

    snapshots_take(now=now)

    tick = QueueSnapshot.objects.filter(queue__name="billing").latest("taken_at")
    assert (tick.completions, tick.handled) == (2, 2)
    assert tick.handling_seconds_sum == pytest.approx(400)
    assert tick.handling_seconds_squares == pytest.approx(100**2 + 300**2)
    expected = sorted([operator_client.principal.user_id, second_operator_client.principal.user_id])
    assert tick.operator_ids == expected


def test_capacity_answers_the_measured_rates_and_exactly_the_fields_of_the_issue(supervisor_client, billing_queues):
    record_ticks("billing", arrivals=(0, 2), handling=120.0, operators=(1, 2))

    response = supervisor_client.get("/api/v1/stats/capacity")

    row = billing_row(response)
    assert set(row) == FIELDS
    assert set(row["predicted_wait_seconds"]) == {"mean", "p95"}
    assert row["arrival_rate_per_hour"] == pytest.approx(60, rel=0.02)
    assert row["service_rate_per_operator_per_hour"] == pytest.approx(30)
    assert row["operators"] == 2
    assert row["utilisation"] == pytest.approx(1.0, rel=0.02)
    assert row["model"]["arrival_rate_per_hour"] == "recent_window"
    assert set(row["model"]) == FIELDS - {"queue", "model"}


def test_scale_and_operators_change_the_what_if_and_the_figures_follow_erlang_c(supervisor_client, billing_queues):
    record_ticks("billing", arrivals=(0, 2), handling=120.0, operators=(1, 2))

    row = billing_row(supervisor_client.get("/api/v1/stats/capacity", {"scale": "0.5", "operators": "billing:3"}))

    arrivals = row["arrival_rate_per_hour"] / 3600
    assert row["arrival_rate_per_hour"] == pytest.approx(30, rel=0.02)
    assert row["operators"] == 3
    assert row["model"]["operators"] == "what_if"
    assert row["model"]["predicted_wait_seconds"] == "erlang_c"
    assert row["predicted_wait_seconds"]["mean"] == pytest.approx(erlang.mean_wait(arrivals, 1 / 120, 3), abs=0.1)
    assert row["sla_attainment"] == pytest.approx(erlang.sla_attainment(arrivals, 1 / 120, 3, 3600), abs=1e-4)
    assert row["operators_needed"] == erlang.servers_needed(arrivals, 1 / 120, 3600, 0.95)


def test_doubled_volume_beyond_capacity_is_unbounded_and_named_in_the_headline(supervisor_client, billing_queues):
    record_ticks("billing", arrivals=(0, 2), handling=120.0, operators=(1, 2), depth=4)

    body = supervisor_client.get("/api/v1/stats/capacity", {"scale": "2"}).json()

    row = next(row for row in body["queues"] if row["queue"] == "billing")
    assert row["predicted_wait_seconds"] == {"mean": "unbounded", "p95": "unbounded"}
    assert row["drain_eta_seconds"] == "unbounded"
    assert row["sla_attainment"] == 0
    assert isinstance(row["breach_eta_seconds"], float)
    assert body["breaks_first"] == "billing"
    assert body["queues"][0]["queue"] == "billing"  # riskiest first
    assert re.fullmatch(
        r"At 2x volume, `billing` breaks first: SLA attainment 0% within 1 h; it needs \d+ operators, has 2\.",
        body["headline"],
    )


def test_a_queue_nobody_works_answers_unbounded_not_an_error(supervisor_client, billing_queues):
    record_ticks("billing", arrivals=(0, 2), operators=())
    row = billing_row(supervisor_client.get("/api/v1/stats/capacity"))
    assert row["operators"] == 0
    assert row["utilisation"] == "unbounded"
    assert row["predicted_wait_seconds"]["mean"] == "unbounded"


def test_without_any_snapshot_every_queue_answers_with_nothing_measured(supervisor_client, billing_queues):
    body = supervisor_client.get("/api/v1/stats/capacity").json()
    row = next(row for row in body["queues"] if row["queue"] == "billing")
    assert row["arrival_rate_per_hour"] == 0
    assert row["service_rate_per_operator_per_hour"] is None
    assert row["sla_attainment"] == 1
    assert "breaks first" not in body["headline"]


def test_the_hour_of_week_profile_replaces_the_window_once_two_weeks_recorded_it(supervisor_client, billing_queues):
    now = timezone.now()
    record_ticks("billing", arrivals=(0, 2), operators=(1,), end=now)
    hour = now.replace(minute=0, second=0, microsecond=0)
    record_ticks("billing", minutes=59, arrivals=(3,), end=hour - timedelta(weeks=1) + timedelta(minutes=59))
    row = billing_row(supervisor_client.get("/api/v1/stats/capacity"))
    assert row["model"]["arrival_rate_per_hour"] == "recent_window"  # one week is not enough

    record_ticks("billing", minutes=59, arrivals=(5,), end=hour - timedelta(weeks=2) + timedelta(minutes=59))

    row = billing_row(supervisor_client.get("/api/v1/stats/capacity"))
    assert row["model"]["arrival_rate_per_hour"] == "hour_of_week_profile"
    assert row["arrival_rate_per_hour"] == pytest.approx((180 + 300) / 2)


def test_bursty_arrivals_are_answered_by_the_simulation(supervisor_client, billing_queues):
    record_ticks("billing", arrivals=(0, 0, 0, 0, 0, 8), handling=60.0, operators=(1, 2, 3))
    row = billing_row(supervisor_client.get("/api/v1/stats/capacity"))
    assert row["model"]["sla_attainment"] == "simulation"
    assert row["model"]["operators_needed"] == "simulation"
    assert 0 <= row["sla_attainment"] <= 1


def test_the_snapshot_job_computes_the_dashboards_volumes_so_requests_run_no_simulation(
    supervisor_client, billing_queues
):
    record_ticks("billing", arrivals=(0, 0, 0, 0, 0, 8), handling=60.0, operators=(1, 2, 3))
    capacity_reports_warm()
    simulate_queue.cache_clear()

    row = billing_row(supervisor_client.get("/api/v1/stats/capacity", {"scale": "2"}))

    assert row["model"]["sla_attainment"] == "simulation"
    assert simulate_queue.cache_info().currsize == 0
    supervisor_client.get("/api/v1/stats/capacity", {"scale": "2.5"})  # not warmed: computed in the request
    assert simulate_queue.cache_info().currsize > 0


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"scale": "abc"}, "scale"),
        ({"scale": "-1"}, "scale"),
        ({"scale": "nan"}, "scale"),
        ({"scale": "inf"}, "scale"),
        ({"scale": "1e999"}, "scale"),
        ({"scale": "101"}, "scale"),
        ({"operators": "billing"}, "operators"),
        ({"operators": "billing:"}, "operators"),
        ({"operators": ":3"}, "operators"),
        ({"operators": "billing:-1"}, "operators"),
        ({"operators": "billing:two"}, "operators"),
        ({"operators": "billing:99999999999"}, "operators"),
        ({"operators": "nosuchqueue:3"}, "operators"),
        ({"operators": "billing:1,billing:2"}, "operators"),
        ({"operators": "billing:1\x00"}, "operators"),
        ({"operators": "x" * 3000}, "operators"),
    ],
)
def test_bad_what_if_parameters_are_400_naming_the_field(supervisor_client, billing_queues, params, path):
    response = supervisor_client.get("/api/v1/stats/capacity", params)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [field["path"] for field in error["fields"]] == [path]
    assert error["message"].startswith(f"{path}: ")


def test_metrics_export_the_capacity_gauges_the_alert_rules_read(client, supervisor_client, billing_queues):
    record_ticks("billing", arrivals=(0, 2), handling=120.0, operators=(), depth=3)
    samples = scrape(client)
    billing = (("queue", "billing"),)
    assert samples[("tollgate_capacity_operators", billing)] == 0
    assert samples[("tollgate_capacity_utilisation", billing)] == math.inf
    assert samples[("tollgate_capacity_arrival_rate_per_hour", billing)] == pytest.approx(60, rel=0.02)
    assert samples[("tollgate_capacity_breach_eta_seconds", billing)] <= 3600


def test_the_dashboard_panel_answers_a_bad_scale_with_400_and_the_reason(billing_queues):
    supervisor = person("sam", "supervisor")
    response = supervisor.get("/dashboard/capacity", {"scale": "lots"})
    assert response.status_code == 400
    assert b"scale: A valid number is required." in response.content
    assert person("olga", "operator").get("/dashboard/capacity").status_code == 403


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_capacity_panel_changes_with_the_scale(live_server, page, billing_queues):
    record_ticks("billing", arrivals=(0, 2), handling=120.0, operators=(1, 2, 3))
    person("sam", "supervisor")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/dashboard")
    headline = page.get_by_test_id("capacity-headline")
    expect(headline).to_contain_text("At current volume, every queue meets 95% of its SLA")

    page.get_by_test_id("capacity-scale").select_option("2.0")

    expect(headline).to_have_text(re.compile(r"At 2x volume, billing breaks first: SLA attainment \d+% within 1 h"))
    expect(page.get_by_test_id("capacity-billing")).to_contain_text("unbounded")
    page.get_by_test_id("capacity").screenshot(path="docs/screenshots/capacity.png")
