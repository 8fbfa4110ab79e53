"""Claim-next under contention: 32 claimers empty a queue of 5,000 items and each item is claimed
exactly once; with the row lock removed the same race double-claims, which proves the test can fail.
Also pins the claim order and that PostgreSQL serves the claim query from the partial index."""

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from exceptions_app.models import AuditEvent, ExceptionItem, ItemKind, ItemStatus, Queue
from exceptions_app.services import items as item_services
from exceptions_app.services.items import item_claim_next
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import BILLING, invoice_output

THREADS = 32
ITEMS = 5_000
UNLOCKED_ITEMS = 500
UNLOCKED_ATTEMPTS = 3
OPERATORS = 8


def items_create(workflow, queue: Queue, count: int, *, seed: int) -> list[int]:
    """``count`` open items in ``queue`` with random priorities, built like intake builds them."""
    agent = principal_ensure(name="billing-bot", role="agent", workflows=[BILLING])
    chance = random.Random(seed)
    now = timezone.now()
    rows = [
        ExceptionItem(
            workflow=workflow,
            policy_version=workflow.current_policy,
            agent=agent,
            kind=ItemKind.REPORTED,
            proposal=invoice_output(invoice_id=f"INV-{seed}-{number}"),
            reasons=[{"code": "load_test", "severity": "medium", "message": ""}],
            status=ItemStatus.OPEN,
            queue=queue,
            priority=chance.randint(0, 300),
            due_at=now + timedelta(seconds=chance.randint(600, 7200)),
            sla_near_at=now + timedelta(seconds=300),
            raised_at=now,
            queued_at=now,
            updated_at=now,
        )
        for number in range(count)
    ]
    return [item.pk for item in ExceptionItem.objects.bulk_create(rows, batch_size=1000)]


def operators_for(queue: Queue) -> list:
    """Operators in a team that works ``queue`` (claim-next checks team membership on every call)."""
    operators = [principal_ensure(name=f"claimer-{n}", role="operator", teams=["claimers"]) for n in range(OPERATORS)]
    queue.teams.set(operators[0].teams.all())
    return operators


def claim_race(queue: Queue, operators: list, threads_count: int = THREADS) -> tuple[list[tuple[int, int]], list]:
    """Start ``threads_count`` claimers together; each claims until the queue answers None.
    Returns the (thread, item id) of every claim and any error a thread raised."""
    barrier = threading.Barrier(threads_count)
    claims: list[tuple[int, int]] = []
    errors: list = []
    lock = threading.Lock()

    def claimer(number: int) -> None:
        principal = operators[number % len(operators)]
        try:
            barrier.wait(timeout=30)
            while True:
                try:
                    item = item_claim_next(queue=queue, principal=principal)
                finally:
                    # Hand the pooled connection back: 32 threads would otherwise hold 32 connections
                    # against a pool of 10 per process.
                    connection.close()
                if item is None:
                    return
                with lock:
                    claims.append((number, item.pk))
        except Exception as error:  # surfaced by the caller's assertion
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(number,), daemon=True) for number in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert not any(thread.is_alive() for thread in threads), "a claimer thread did not finish"
    return claims, errors


@pytest.mark.django_db(transaction=True)
def test_32_claimers_empty_a_queue_of_5000_items_and_claim_each_exactly_once(billing_workflow):
    queue = Queue.objects.get(name="billing")
    operators = operators_for(queue)
    item_ids = items_create(billing_workflow, queue, ITEMS, seed=1)

    claims, errors = claim_race(queue, operators)

    assert not errors, errors[:3]
    claimed_ids = [item_id for _, item_id in claims]
    repeated = [item_id for item_id, times in Counter(claimed_ids).items() if times > 1]
    assert repeated == []
    assert len(claimed_ids) == ITEMS
    assert set(claimed_ids) == set(item_ids)
    assert len({thread for thread, _ in claims}) > 1, "the claims were not spread over the threads"
    assert not ExceptionItem.objects.filter(queue=queue).exclude(status=ItemStatus.CLAIMED).exists()
    assert ExceptionItem.objects.filter(queue=queue, claimed_by__isnull=True).count() == 0
    events = (
        ExceptionItem.objects.filter(pk__in=item_ids)
        .annotate(claims=Count("events", filter=Q(events__action="claimed")))
        .values_list("claims", flat=True)
    )
    assert Counter(events) == {1: ITEMS}
    assert AuditEvent.objects.filter(action="claimed").count() == ITEMS


@pytest.mark.django_db(transaction=True)
def test_without_the_row_lock_concurrent_claimers_claim_items_twice(billing_workflow, monkeypatch):
    """The control experiment: the same race with FOR UPDATE SKIP LOCKED removed double-claims."""
    monkeypatch.setattr(item_services, "_lock_for_claim", lambda candidates: candidates)
    monkeypatch.setattr(item_services, "CLAIM_HEAD_LOCK", "")
    queue = Queue.objects.get(name="billing")
    operators = operators_for(queue)

    attempts = []
    for attempt in range(UNLOCKED_ATTEMPTS):
        items_create(billing_workflow, queue, UNLOCKED_ITEMS, seed=100 + attempt)
        claims, errors = claim_race(queue, operators)
        assert not errors, errors[:3]
        repeated = {item_id: times for item_id, times in Counter(i for _, i in claims).items() if times > 1}
        attempts.append(len(repeated))
        if repeated:
            break

    assert repeated, f"no double claim without the lock in {len(attempts)} attempts"
    # The audit log shows the damage too: one item, two "claimed" events from different claimers.
    twice = next(iter(repeated))
    assert AuditEvent.objects.filter(item_id=twice, action="claimed").count() == repeated[twice] >= 2


@pytest.mark.django_db
def test_claim_next_takes_priority_first_then_the_earliest_due_then_the_oldest(billing_workflow):
    queue = Queue.objects.get(name="billing")
    operator = operators_for(queue)[0]
    now = timezone.now()
    ids = items_create(billing_workflow, queue, 6, seed=7)
    crafted = {  # item index: (priority, due in minutes)
        0: (10, 30),
        1: (50, 90),
        2: (50, 30),
        3: (10, 30),  # ties with 0 on priority and due time: the lower id goes first
        4: (99, 600),
        5: (10, 5),
    }
    for index, (priority, due_minutes) in crafted.items():
        ExceptionItem.objects.filter(pk=ids[index]).update(
            priority=priority, due_at=now + timedelta(minutes=due_minutes)
        )

    order = []
    while (item := item_claim_next(queue=queue, principal=operator)) is not None:
        order.append(ids.index(item.pk))

    assert order == [4, 2, 1, 5, 0, 3]


@pytest.mark.django_db
def test_the_claim_query_reads_the_partial_index_in_claim_order_without_sorting(billing_workflow):
    queue = Queue.objects.get(name="billing")
    items_create(billing_workflow, queue, 50, seed=11)
    candidates = ExceptionItem.objects.filter(queue=queue, status=ItemStatus.OPEN).order_by(
        "-priority", "due_at", "id"
    )[:1]

    with transaction.atomic(), connection.cursor() as cursor:
        # A tiny table makes a sequential scan look cheapest; forbid it so the plan shows
        # whether the index can serve the filter and the order on its own.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
        plan = candidates.explain()

    assert "item_claim_order" in plan, plan
    assert "Index Scan" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.django_db
def test_the_team_check_inside_the_claim_statement_refuses_outsiders_and_claims_nothing(billing_workflow):
    """On PostgreSQL the access check is part of the claim statement; an outsider gets the domain
    error (not an empty queue) and no item changes; a member and a supervisor claim."""
    from exceptions_app.errors import Forbidden

    queue = Queue.objects.get(name="billing")
    member = operators_for(queue)[0]
    outsider = principal_ensure(name="outsider", role="operator", teams=["elsewhere"])
    supervisor = principal_ensure(name="sup", role="supervisor")
    items_create(billing_workflow, queue, 3, seed=7)

    with pytest.raises(Forbidden):
        item_claim_next(queue=queue, principal=outsider)
    assert ExceptionItem.objects.filter(status=ItemStatus.CLAIMED).count() == 0
    assert not AuditEvent.objects.filter(action="claimed").exists()

    assert item_claim_next(queue=queue, principal=member).claimed_by_id == member.user_id
    assert item_claim_next(queue=queue, principal=supervisor).claimed_by_id == supervisor.user_id
    assert item_claim_next(queue=queue, principal=member) is not None
    assert item_claim_next(queue=queue, principal=member) is None  # empty, and allowed: no error
