"""Dashboard figures pinned against hand-computed values on a small fixture, on a controlled clock."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app import stats
from exceptions_app.models import ExceptionItem, Queue, QueueSnapshot
from exceptions_app.services.snapshots import AGE_BUCKETS, percentile, snapshots_take
from exceptions_app.services.tallies import LATENCY_BUCKETS, tallies_advance
from tests.fixtures.gate import decision_body, hold
from tests.fixtures.snapshots import queue_snapshot

pytestmark = pytest.mark.django_db


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([60, 120, 180, 600], 0.5) == 150
    assert percentile([60, 120, 180, 600], 0.95) == pytest.approx(537)
    assert percentile([42], 0.95) == 42
    assert percentile([], 0.5) is None


def test_bucket_percentile_interpolates_inside_the_bucket():
    counts = [0] * len(LATENCY_BUCKETS)
    counts[2] = 1  # one value in (5, 15]
    assert stats.bucket_percentile(counts, 0.5) == pytest.approx(10)
    counts[4] = 3  # three more in (30, 60]
    assert stats.bucket_percentile(counts, 0.5) == pytest.approx(30 + 30 * (2 - 1) / 3)
    assert stats.bucket_percentile([0] * len(LATENCY_BUCKETS), 0.5) is None


def test_a_snapshot_records_depth_ages_flows_and_histogram(agent_client, operator_client):
    now = timezone.now().replace(microsecond=0)
    ids = [hold(agent_client) for _ in range(7)]
    ages = [60, 120, 180, 600]
    for item_id, age in zip(ids[:4], ages, strict=True):
        ExceptionItem.objects.filter(pk=item_id).update(queued_at=now - timedelta(seconds=age))
    operator_client.post(f"/api/v1/exceptions/{ids[4]}/claim")
    operator_client.post(f"/api/v1/exceptions/{ids[5]}/claim")
    operator_client.post(f"/api/v1/exceptions/{ids[5]}/resolve", {"action": "approve"}, format="json")
    operator_client.post(f"/api/v1/exceptions/{ids[6]}/claim")
    operator_client.post(
        f"/api/v1/exceptions/{ids[6]}/snooze", {"until": (now + timedelta(hours=1)).isoformat()}, format="json"
    )
    ExceptionItem.objects.filter(pk=ids[0]).update(sla_breached_at=now - timedelta(seconds=5))
    queue_snapshot("billing", taken_at=now - timedelta(minutes=1)).save()
    ExceptionItem.objects.filter(pk__in=ids).update(raised_at=now - timedelta(seconds=30))
    ExceptionItem.objects.filter(pk=ids[5]).update(resolved_at=now - timedelta(seconds=10))

    snapshots_take(now=now)

    snapshot = QueueSnapshot.objects.get(queue__name="billing", taken_at=now)
    assert (snapshot.depth, snapshot.claimed, snapshot.snoozed) == (4, 1, 1)
    assert snapshot.oldest_age_seconds == pytest.approx(600)
    assert snapshot.p50_age_seconds == pytest.approx(150)
    assert snapshot.p95_age_seconds == pytest.approx(537)
    assert (snapshot.arrivals, snapshot.completions, snapshot.sla_breaches) == (7, 1, 1)
    expected = [0] * len(AGE_BUCKETS)
    expected[0], expected[1], expected[2] = 1, 2, 1  # <=60, <=300, <=900
    assert snapshot.age_buckets == expected
    empty = QueueSnapshot.objects.get(queue__name="billing-senior", taken_at=now)
    assert (empty.depth, empty.p95_age_seconds, empty.arrivals) == (0, None, 0)


def test_review_and_override_rates_per_workflow_and_band(agent_client, operator_client):
    for confidence in (0.95, 0.92):
        agent_client.post("/api/v1/decisions", decision_body(confidence=confidence), format="json")
    held = [
        hold(agent_client, confidence=0.6),
        hold(agent_client, confidence=0.85),
        hold(agent_client, confidence=0.6),
        hold(agent_client, confidence=0.6),
    ]
    for item_id, (action, extra) in zip(
        held,
        [
            ("approve", {}),
            ("approve", {}),
            ("modify", {"output": {"invoice_id": "X", "type": "rerate", "amount": 1, "currency": "EUR"}}),
            ("reject", {"reason_code": "wrong"}),
        ],
        strict=True,
    ):
        operator_client.post(f"/api/v1/exceptions/{item_id}/claim")
        operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": action, **extra}, format="json")

    tallies_advance()
    tallies_advance()  # a second run adds nothing: the cursors moved
    rows = {
        (row["workflow"], row["band"]): row for row in stats.workflow_rates(since=timezone.now() - timedelta(days=1))
    }

    overall = rows[("billing.invoice_adjustment", "all")]
    assert (overall["decisions"], overall["held"], overall["review_rate"]) == (6, 4, pytest.approx(4 / 6, abs=1e-4))
    assert (overall["resolved"], overall["overridden"], overall["override_rate"]) == (4, 2, 0.5)
    assert rows[("billing.invoice_adjustment", "0.9-1.0")]["review_rate"] == 0.0
    low = rows[("billing.invoice_adjustment", "0.5-0.7")]
    assert (low["review_rate"], low["resolved"], low["override_rate"]) == (1.0, 3, pytest.approx(0.6667, abs=1e-4))


def test_latency_split_and_operator_figures_come_from_the_item_timestamps(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(f"/api/v1/exceptions/{item_id}/claim")
    operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")
    resolved = ExceptionItem.objects.get(pk=item_id).resolved_at
    ExceptionItem.objects.filter(pk=item_id).update(
        queued_at=resolved - timedelta(seconds=110), first_claimed_at=resolved - timedelta(seconds=100)
    )

    tallies_advance()
    since = timezone.now() - timedelta(days=1)
    split = {row["stage"]: row for row in stats.latency_split(since=since)}
    operators = {row["operator"]: row for row in stats.operator_table(since=since)}

    assert split["waiting"]["count"] == 1
    assert split["waiting"]["mean_seconds"] == pytest.approx(10)
    assert split["waiting"]["p50_seconds"] == pytest.approx(10)  # in (5, 15], interpolated at the middle
    assert split["handling"]["mean_seconds"] == pytest.approx(100)
    assert split["handling"]["p50_seconds"] == pytest.approx(90)  # in (60, 120]
    assert split["delivery"]["count"] == 0  # poll target: nothing sent
    assert (operators["olga"]["resolved"], operators["olga"]["median_handling_seconds"]) == (1, pytest.approx(90))


def test_rollup_figures_are_cached_until_a_tally_changes_them(agent_client, operator_client, django_assert_num_queries):
    first = hold(agent_client)
    operator_client.post(f"/api/v1/exceptions/{first}/claim")
    operator_client.post(f"/api/v1/exceptions/{first}/resolve", {"action": "approve"}, format="json")
    tallies_advance()
    since = timezone.now() - timedelta(days=1)
    before = stats.latency_split(since=since)
    # Served from the cache: only the version check (one statement for the tables' largest ids, one
    # for the cursors) runs, not the rollup read.
    with django_assert_num_queries(2):
        assert stats.latency_split(since=since) == before

    second = hold(agent_client)
    operator_client.post(f"/api/v1/exceptions/{second}/claim")
    operator_client.post(
        f"/api/v1/exceptions/{second}/resolve", {"action": "reject", "reason_code": "wrong"}, format="json"
    )
    assert stats.latency_split(since=since) == before  # not tallied yet: the rollups have not changed
    tallies_advance()
    after = {row["stage"]: row for row in stats.latency_split(since=since)}
    assert after["handling"]["count"] == 2
    operators = {row["operator"]: row for row in stats.operator_table(since=since)}
    assert operators["olga"]["resolved"] == 2


def test_the_queue_table_is_sorted_by_risk_and_names_claimers(agent_client, operator_client):
    first = hold(agent_client)
    hold(agent_client)
    operator_client.post(f"/api/v1/exceptions/{first}/claim")
    now = timezone.now()
    billing, senior = Queue.objects.get(name="billing"), Queue.objects.get(name="billing-senior")
    for queue, oldest in ((billing, 600.0), (senior, 3000.0)):
        queue_snapshot(
            queue, taken_at=now, depth=1, arrivals=2, completions=1, sla_breaches=1, oldest_age_seconds=oldest
        ).save()

    table = stats.queue_table(queues=Queue.objects.all(), now=now)

    assert [row["queue"] for row in table] == ["billing-senior", "billing"]
    billing_row = table[1]
    assert (billing_row["depth"], billing_row["claimed"], billing_row["claimed_by"]) == (1, 1, "olga (1)")
    assert billing_row["risk"] == pytest.approx(600 / 3600, abs=1e-3)
    assert (billing_row["arrivals_last_hour"], billing_row["sla_breaches_24h"]) == (2, 1)


def test_the_beat_jobs_precompute_the_dashboards_figures(agent_client, operator_client, django_assert_num_queries):
    from exceptions_app.tasks import periodic

    item_id = hold(agent_client)
    operator_client.post(f"/api/v1/exceptions/{item_id}/claim")
    operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")
    periodic.tallies_advance()  # run in-process: the task body, as the worker runs it
    periodic.snapshots_take()
    since = timezone.now() - stats.DASHBOARD_WINDOW
    # Only the version checks run: the figures themselves were computed by the jobs.
    with django_assert_num_queries(2):
        assert {row["stage"]: row for row in stats.latency_split(since=since)}["handling"]["count"] == 1
    with django_assert_num_queries(2):
        assert stats.counter_totals()["resolutions"] == [("billing.invoice_adjustment", "approve", 1)]
    with django_assert_num_queries(1):
        rows = stats.chart_rows(since)
    assert sum(len(points) for points in rows["series"].values()) == Queue.objects.count()
