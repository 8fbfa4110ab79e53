"""Concurrent approvals race safely. Two people going for the last approval of an item at once end
with exactly one resolution, delivered once. Under the item's row lock and lease that is the
normal path; the Vote table's seat constraint holds the same line without them: two votes that
both read "one approval so far" cannot both take seat two. With that constraint dropped, the same
race counts both votes and settles the item twice, which proves the test can fail."""

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from exceptions_app.errors import DomainError, VoteRefused
from exceptions_app.models import Delivery, ExceptionItem, ItemStatus, PolicySource, Vote
from exceptions_app.services import consensus
from exceptions_app.services.items import item_claim, item_resolve
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import billing_document, client_for, hold

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def first_approved(billing_queues, agent_client):
    """An item needing two approvals that olga has approved; otto and oona both want the second."""
    rule = {"when": "value_at_risk > 10000.0", "required": 2}
    policy_publish(document=billing_document(approvals=[rule]), source=PolicySource.FILE)
    item_id = hold(agent_client, value_at_risk="20000.00")
    olga = client_for("olga", "operator", teams=["billing-team"]).principal
    item_claim(item_id=item_id, principal=olga)
    item_resolve(item_id=item_id, principal=olga, action="approve")
    people = [principal_ensure(name=name, role="operator", teams=["billing-team"]) for name in ("otto", "oona")]
    return item_id, people


def race(work, people) -> list:
    """Run ``work(principal)`` for each person at once; what each returned or raised."""
    barrier = threading.Barrier(len(people))
    outcomes: list = [None] * len(people)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = work(people[index])
        except DomainError as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(people))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_people_racing_for_the_last_approval_resolve_it_once(first_approved):
    item_id, people = first_approved

    def claim_and_approve(principal):
        item_claim(item_id=item_id, principal=principal)
        return item_resolve(item_id=item_id, principal=principal, action="approve")

    for _ in range(3):  # each round, both go at it together; the loser finds it taken or resolved
        outcomes = race(claim_and_approve, people)
        if ExceptionItem.objects.get(pk=item_id).status == ItemStatus.RESOLVED:
            break

    assert sum(isinstance(outcome, ExceptionItem) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, DomainError) for outcome in outcomes) == 1
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.RESOLVED
    assert Vote.objects.filter(item_id=item_id).count() == 2
    [delivery] = Delivery.objects.filter(item_id=item_id)
    assert len(delivery.payload["approvers"]) == 2


def _votes_both_read_first(monkeypatch, people) -> None:
    """Make both votes read the tally before either inserts: the window the row lock normally closes."""
    barrier = threading.Barrier(len(people))
    insert = consensus._vote_insert

    def insert_after_both_read(**values):
        barrier.wait(timeout=10)
        return insert(**values)

    monkeypatch.setattr(consensus, "_vote_insert", insert_after_both_read)


def _vote_without_lock_or_lease(item_id: int):
    def vote(principal):
        with transaction.atomic():
            item = ExceptionItem.objects.select_related("policy_version").get(pk=item_id)
            return consensus.consensus_vote(
                item=item,
                principal=principal,
                action="approve",
                now=timezone.now(),
                output=None,
                reason_code="",
                note="",
            )

    return vote


def test_without_the_row_lock_the_seat_constraint_still_lets_one_vote_settle(first_approved, monkeypatch):
    item_id, people = first_approved
    _votes_both_read_first(monkeypatch, people)

    outcomes = race(_vote_without_lock_or_lease(item_id), people)

    settled = [outcome for outcome in outcomes if isinstance(outcome, consensus.Settled)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, VoteRefused)]
    assert len(settled) == 1
    assert [error.code for error in refused] == ["vote_conflict"]
    assert Vote.objects.filter(item_id=item_id).count() == 2


def test_control_without_the_seat_constraint_the_race_settles_twice(first_approved, monkeypatch):
    item_id, people = first_approved
    _votes_both_read_first(monkeypatch, people)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE exceptions_app_vote DROP CONSTRAINT vote_one_per_seat")
    try:
        outcomes = race(_vote_without_lock_or_lease(item_id), people)
    finally:
        Vote.objects.filter(item_id=item_id, seat=2).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE exceptions_app_vote ADD CONSTRAINT vote_one_per_seat UNIQUE (item_id, purpose, seat)"
            )

    assert sum(isinstance(outcome, consensus.Settled) for outcome in outcomes) == 2
