"""Undo of a console decision (exceptions_app/services/undo.py): the delivery is held for the undo
window on the server, so undo withdraws something never sent; after the window it is refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app.errors import IllegalTransition
from exceptions_app.models import AuditEvent, Delivery, ExceptionItem, ItemStatus
from exceptions_app.services.deliveries import deliveries_due
from exceptions_app.services.items import item_claim, item_resolve
from exceptions_app.services.tokens import principal_ensure
from exceptions_app.services.undo import item_resolution_undo, undo_window
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook_item(agent_client, billing_queues):
    return hold(agent_client, callback_url="http://127.0.0.1:9/hook")


def resolved_by(name: str, item_id: int):
    principal = principal_ensure(name=name, role="operator", teams=["billing-team"])
    item_claim(item_id=item_id, principal=principal)
    item_resolve(item_id=item_id, principal=principal, action="approve", hold_delivery=undo_window())
    return principal


def test_a_console_decision_is_not_due_for_delivery_until_the_undo_window_ends(webhook_item):
    resolved_by("olga", webhook_item)
    delivery = Delivery.objects.get(item_id=webhook_item)

    assert delivery.pk not in deliveries_due(now=timezone.now())
    assert delivery.pk in deliveries_due(now=timezone.now() + undo_window() + timedelta(seconds=1))


def test_undo_inside_the_window_withdraws_the_unsent_delivery_and_audits_it(webhook_item):
    olga = resolved_by("olga", webhook_item)
    public_id = Delivery.objects.get(item_id=webhook_item).public_id

    item_resolution_undo(item_id=webhook_item, principal=olga)

    item = ExceptionItem.objects.get(pk=webhook_item)
    assert (item.status, item.resolution, item.resolved_at, item.claimed_by_id) == (
        ItemStatus.CLAIMED,
        "",
        None,
        olga.user_id,
    )
    assert not Delivery.objects.filter(item_id=webhook_item).exists()
    event = AuditEvent.objects.get(item_id=webhook_item, action="resolution_undone")
    assert (event.payload["resolution"], event.payload["deliveries_withdrawn"]) == ("approve", [public_id])


def test_undo_after_the_window_or_by_someone_else_is_refused_and_changes_nothing(webhook_item):
    olga = resolved_by("olga", webhook_item)
    otto = principal_ensure(name="otto", role="operator", teams=["billing-team"])

    with pytest.raises(IllegalTransition, match="no decision of yours"):
        item_resolution_undo(item_id=webhook_item, principal=otto)
    past = timezone.now() - undo_window() - timedelta(seconds=1)
    ExceptionItem.objects.filter(pk=webhook_item).update(resolved_at=past)
    Delivery.objects.filter(item_id=webhook_item).update(next_attempt_at=past + undo_window())
    with pytest.raises(IllegalTransition, match="already been sent"):
        item_resolution_undo(item_id=webhook_item, principal=olga)

    assert ExceptionItem.objects.get(pk=webhook_item).status == ItemStatus.RESOLVED
    assert Delivery.objects.filter(item_id=webhook_item).count() == 1
    assert not AuditEvent.objects.filter(action="resolution_undone").exists()


def test_decisions_through_the_api_are_not_held(webhook_item):
    principal = principal_ensure(name="olga", role="operator", teams=["billing-team"])
    item_claim(item_id=webhook_item, principal=principal)
    item_resolve(item_id=webhook_item, principal=principal, action="approve")

    assert Delivery.objects.get(item_id=webhook_item).pk in deliveries_due(now=timezone.now())


def test_the_resolutions_tally_waits_for_the_undo_window_so_an_undone_decision_is_never_counted(webhook_item):
    from exceptions_app.services.tallies import resolutions_tally

    olga = resolved_by("olga", webhook_item)
    assert resolutions_tally() == 0  # held: may still be undone
    item_resolution_undo(item_id=webhook_item, principal=olga)
    item_resolve(item_id=webhook_item, principal=olga, action="approve", hold_delivery=undo_window())
    Delivery.objects.filter(item_id=webhook_item).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert resolutions_tally() == 1  # the decision that stood, once


def test_an_undone_judgement_is_taken_back_out_of_the_drift_breaker(agent_client, billing_queues):
    """A reject moves the override CUSUM up and a later approval down; undoing the reject leaves the
    score as if only the approval had been judged, not as it was after both."""
    from exceptions_app.accountability.breaker import Cusum
    from exceptions_app.models import BreakerState, PolicySource
    from exceptions_app.services.policies import policy_publish
    from tests.fixtures.gate import billing_document

    policy_publish(
        document=billing_document(breaker={"override": {"baseline": 0.1, "detect": 0.6}}), source=PolicySource.FILE
    )
    cusum = Cusum(0.1, 0.6)
    olga = principal_ensure(name="olga", role="operator", teams=["billing-team"])
    wrong, right = hold(agent_client, correlation_id="wrong"), hold(agent_client, correlation_id="right")
    for item_id, action in ((wrong, "reject"), (right, "approve")):
        item_claim(item_id=item_id, principal=olga)
        code = "wrong_amount" if action == "reject" else ""
        item_resolve(item_id=item_id, principal=olga, action=action, reason_code=code, hold_delivery=undo_window())
    state = BreakerState.objects.get()
    assert state.override_score == pytest.approx(cusum.wrong_step + cusum.right_step)
    assert state.override_judged == 2

    item_resolution_undo(item_id=wrong, principal=olga)

    state.refresh_from_db()
    assert state.override_score == cusum.step(0.0, wrong=False) == 0.0
    assert state.override_judged == 1
    assert [observation["item"] for observation in state.recent] == [right]
    item_resolve(item_id=wrong, principal=olga, action="approve", hold_delivery=undo_window())  # judged again
    state.refresh_from_db()
    assert (state.override_judged, [observation["item"] for observation in state.recent]) == (2, [right, wrong])
