"""Every transition goes through item_state_change: the claim is dropped whole on every way out of
``claimed``, what is set is saved, and the audit event names the status before and after."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app.models import AuditEvent, ExceptionItem, ItemStatus
from exceptions_app.services import items as lifecycle
from exceptions_app.services.sweeps import claims_expire, items_expire
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db

CLAIM_FIELDS = ("claimed_by_id", "claimed_at", "claim_expires_at")


@pytest.fixture
def olga(billing_queues):
    return principal_ensure(name="olga", role="operator", teams=["billing-team"])


def claimed_item(agent_client, olga) -> int:
    item_id = hold(agent_client)
    lifecycle.item_claim(item_id=item_id, principal=olga)
    return item_id


def claim_of(item_id: int) -> tuple:
    return ExceptionItem.objects.values_list(*CLAIM_FIELDS).get(pk=item_id)


def test_cancelling_a_claimed_item_drops_the_whole_claim(agent_client, olga):
    # Cancel cleared the holder and the lease but left claimed_at behind.
    item_id = claimed_item(agent_client, olga)

    lifecycle.item_cancel(item_id=item_id, actor=agent_client.principal.user, reason="withdrawn")

    assert claim_of(item_id) == (None, None, None)


def test_expiring_a_claimed_item_drops_the_whole_claim(agent_client, olga):
    # The deadline sweep cleared the holder and the lease but left claimed_at behind.
    item_id = claimed_item(agent_client, olga)
    ExceptionItem.objects.filter(pk=item_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert items_expire() == 1

    item = ExceptionItem.objects.get(pk=item_id)
    assert (item.status, claim_of(item_id)) == (ItemStatus.EXPIRED, (None, None, None))


@pytest.mark.parametrize(
    "leave",
    [
        lambda item_id, olga: lifecycle.item_release(item_id=item_id, principal=olga),
        lambda item_id, olga: lifecycle.item_resolve(item_id=item_id, principal=olga, action="approve"),
        lambda item_id, olga: lifecycle.item_resolve(item_id=item_id, principal=olga, action="escalate"),
        lambda item_id, olga: lifecycle.item_snooze(
            item_id=item_id, principal=olga, until=timezone.now() + timedelta(hours=1)
        ),
        lambda item_id, olga: claims_expire(now=timezone.now() + timedelta(days=1)),
    ],
    ids=["release", "resolve", "escalate", "snooze", "lease-expiry"],
)
def test_every_way_out_of_claimed_drops_the_whole_claim(agent_client, olga, leave):
    item_id = claimed_item(agent_client, olga)

    leave(item_id, olga)

    assert claim_of(item_id) == (None, None, None)


def test_the_api_shows_when_a_claim_began_and_a_renewal_keeps_it(agent_client, operator_client):
    item_id = hold(agent_client)
    first = operator_client.post(f"/api/v1/exceptions/{item_id}/claim").json()["claim"]

    renewed = operator_client.post(f"/api/v1/exceptions/{item_id}/renew").json()["claim"]

    assert first["claimed_at"] is not None
    assert renewed["claimed_at"] == first["claimed_at"]
    assert renewed["expires_at"] >= first["expires_at"]


def test_the_audit_event_names_the_status_before_and_after(agent_client, olga):
    item_id = hold(agent_client)
    lifecycle.item_claim(item_id=item_id, principal=olga)
    lifecycle.item_snooze(item_id=item_id, principal=olga, until=timezone.now() + timedelta(hours=1))
    lifecycle.item_claim(item_id=item_id, principal=olga)

    events = list(
        AuditEvent.objects.filter(item_id=item_id).order_by("id").values_list("action", "from_status", "to_status")
    )

    assert events[1:] == [
        ("claimed", "open", "claimed"),
        ("snoozed", "claimed", "snoozed"),
        ("claimed", "snoozed", "claimed"),
    ]
