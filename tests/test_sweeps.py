"""Lease expiry, snooze wake-up, SLA escalation and deadlines: the beat jobs, on a controlled clock."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app.models import AuditEvent, ExceptionItem, ItemStatus, SlaStage
from exceptions_app.services import sweeps
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import billing_document, hold

pytestmark = pytest.mark.django_db


def item_url(item_id: int, action: str) -> str:
    return f"/api/v1/exceptions/{item_id}/{action}"


def test_expired_leases_return_to_the_queue_and_live_ones_stay(agent_client, operator_client):
    expired, live = hold(agent_client), hold(agent_client)
    operator_client.post(item_url(expired, "claim"))
    operator_client.post(item_url(live, "claim"))
    lease_end = ExceptionItem.objects.get(pk=expired).claim_expires_at
    ExceptionItem.objects.filter(pk=live).update(claim_expires_at=lease_end + timedelta(minutes=5))

    count = sweeps.claims_expire(now=lease_end + timedelta(seconds=1))

    assert count == 1
    item = ExceptionItem.objects.get(pk=expired)
    assert (item.status, item.claimed_by_id, item.claim_expires_at) == (ItemStatus.OPEN, None, None)
    assert item.first_claimed_at is not None
    assert ExceptionItem.objects.get(pk=live).status == ItemStatus.CLAIMED
    assert AuditEvent.objects.get(item_id=expired, action="lease_expired").actor_label == "system"
    assert sweeps.claims_expire(now=lease_end + timedelta(seconds=2)) == 0


def test_snoozed_items_wake_when_their_time_comes(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))
    until = timezone.now() + timedelta(hours=1)
    operator_client.post(item_url(item_id, "snooze"), {"until": until.isoformat()}, format="json")

    assert sweeps.snoozes_wake(now=until - timedelta(seconds=1)) == 0
    assert sweeps.snoozes_wake(now=until) == 1
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.OPEN
    assert AuditEvent.objects.filter(item_id=item_id, action="woke").count() == 1


def test_sla_raises_priority_near_the_deadline_and_records_one_breach(agent_client):
    item_id = hold(agent_client)
    item = ExceptionItem.objects.get(pk=item_id)
    start, due = item.priority, item.due_at

    sweeps.sla_escalate(now=due - timedelta(minutes=30))
    on_time = ExceptionItem.objects.get(pk=item_id)
    sweeps.sla_escalate(now=due - timedelta(minutes=10))
    near = ExceptionItem.objects.get(pk=item_id)
    sweeps.sla_escalate(now=due + timedelta(seconds=1))
    sweeps.sla_escalate(now=due + timedelta(minutes=5))
    breached = ExceptionItem.objects.get(pk=item_id)

    assert (on_time.priority, on_time.sla_stage) == (start, SlaStage.ON_TIME)
    assert (near.priority, near.sla_stage) == (start + sweeps.SLA_NEAR_PRIORITY_BOOST, SlaStage.NEAR)
    expected = start + sweeps.SLA_NEAR_PRIORITY_BOOST + sweeps.SLA_BREACH_PRIORITY_BOOST
    assert (breached.priority, breached.sla_stage) == (expected, SlaStage.BREACHED)
    assert breached.sla_breached_at == due + timedelta(seconds=1)
    assert AuditEvent.objects.filter(item_id=item_id, action="sla_breached").count() == 1


def test_resolved_items_are_left_out_of_sla_escalation(agent_client, operator_client):
    item_id = hold(agent_client)
    operator_client.post(item_url(item_id, "claim"))
    operator_client.post(item_url(item_id, "resolve"), {"action": "approve"}, format="json")
    due = ExceptionItem.objects.get(pk=item_id).due_at

    assert sweeps.sla_escalate(now=due + timedelta(hours=1)) == 0
    assert not AuditEvent.objects.filter(item_id=item_id, action="sla_breached").exists()


@pytest.mark.parametrize(("fallback", "approved"), [("approve", True), ("reject", False)])
def test_items_past_their_deadline_expire_with_the_workflow_fallback(agent_client, fallback, approved):
    policy_publish(document=billing_document(fallback=fallback, expire_after_seconds=600), source="api")
    item_id = hold(agent_client)
    deadline = ExceptionItem.objects.get(pk=item_id).expires_at

    assert sweeps.items_expire(now=deadline - timedelta(seconds=1)) == 0
    assert sweeps.items_expire(now=deadline) == 1

    item = ExceptionItem.objects.get(pk=item_id)
    assert (item.status, item.resolution, item.reason_code) == (ItemStatus.EXPIRED, "fallback", f"expired_{fallback}")
    assert (item.final_output == item.proposal) is approved
    assert AuditEvent.objects.get(item_id=item_id, action="expired").payload == {"fallback": fallback}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_sweeps_in_a_real_worker(
    agent_client, operator_client, celery_worker, run_management_process, tmp_path
):
    claimed, snoozed, late = hold(agent_client), hold(agent_client), hold(agent_client)
    operator_client.post(item_url(claimed, "claim"))
    operator_client.post(item_url(snoozed, "claim"))
    operator_client.post(
        item_url(snoozed, "snooze"), {"until": (timezone.now() + timedelta(hours=1)).isoformat()}, format="json"
    )
    past = timezone.now() - timedelta(seconds=1)
    ExceptionItem.objects.filter(pk=claimed).update(claim_expires_at=past)
    ExceptionItem.objects.filter(pk=snoozed).update(snoozed_until=past)
    ExceptionItem.objects.filter(pk=late).update(due_at=past, sla_near_at=past)

    run_management_process("beat", "--schedule", str(tmp_path / "schedule"), TOLLGATE_SWEEP_SECONDS="1")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = {item.pk: item for item in ExceptionItem.objects.filter(pk__in=[claimed, snoozed, late])}
        if (
            states[claimed].status == ItemStatus.OPEN
            and states[snoozed].status == ItemStatus.OPEN
            and states[late].sla_stage == SlaStage.BREACHED
        ):
            break
        time.sleep(0.2)
    assert states[claimed].status == ItemStatus.OPEN
    assert states[snoozed].status == ItemStatus.OPEN
    assert states[late].sla_stage == SlaStage.BREACHED
