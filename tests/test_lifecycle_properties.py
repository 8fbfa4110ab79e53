"""Random sequences of lifecycle actions keep the item invariants.

A hypothesis state machine claims, releases, renews, resolves, escalates, snoozes, wakes, cancels,
comments and lets leases, SLAs and deadlines run out, on a handful of fresh items per example. Time
is a virtual clock (``timezone.now`` is patched) so sweeps can run "later" without ever moving time
backwards. A small reference model predicts every outcome: legal actions must do exactly what it
says, illegal ones must raise the expected domain error and change nothing. After every step the
invariants are checked: one live claim at most, terminal items never change, every status change
has its audit event (and the audit log replays into the current state), timestamps never go back.
"""

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from exceptions_app.errors import DomainError, Forbidden, IllegalTransition, InvalidInput
from exceptions_app.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    AuditEvent,
    ExceptionItem,
    ItemStatus,
    Principal,
    Queue,
    Resolution,
    Team,
)
from exceptions_app.services import sweeps
from exceptions_app.services.intake import ReportRequest, exception_report
from exceptions_app.services.items import (
    ESCALATION_PRIORITY_BOOST,
    MAX_SNOOZE,
    item_cancel,
    item_claim,
    item_claim_next,
    item_comment_add,
    item_release,
    item_renew_lease,
    item_resolve,
    item_snooze,
)
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import BILLING, invoice_output

LEASE = timedelta(seconds=django_settings.TOLLGATE_CLAIM_LEASE_SECONDS)
OPEN, CLAIMED, SNOOZED = ItemStatus.OPEN, ItemStatus.CLAIMED, ItemStatus.SNOOZED
RESOLVED, CANCELLED, EXPIRED = ItemStatus.RESOLVED, ItemStatus.CANCELLED, ItemStatus.EXPIRED
BILLING_QUEUE, SENIOR_QUEUE = "billing", "billing-senior"
# (severity, seconds after the previous item): equal severities raised together tie on priority and
# due time, so claim order falls back to the id; the later items also reach their deadline later.
ITEMS = [("medium", 0), ("high", 0), ("medium", 0), ("low", 120), ("critical", 3600)]
CAPTURED = ("proposal", "confidence", "input", "context", "trace", "reasons", "raised_at", "queued_at", "agent_id")
EDITED_OUTPUT = invoice_output(amount=99.0, reason="operator corrected the amount")
INVALID_OUTPUT = invoice_output(amount=-5, currency="euro")

# olga works both queues, omar billing only; sam supervises; bot is the agent. "holder" (drawn half
# the time) stands for whoever holds the picked item, olga when nobody does, so that legal moves are
# drawn about as often as illegal ones.
operators = st.just("holder") | st.sampled_from(["olga", "omar", "sam"])
claimers = st.just("holder") | st.sampled_from(["olga", "omar", "sam", "bot"])
# Picks below len(ITEMS) name an item; the others name a currently claimed item, if there is one.
picks = st.integers(0, 2 * len(ITEMS) - 1)
lease_edges = st.sampled_from([0, 1, 599, 600, 601]) | st.integers(0, 1200)


class Clock:
    def __init__(self, start: datetime):
        self.value = start

    def now(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)

    def reach(self, moment: datetime) -> None:
        self.value = max(self.value, moment)


@dataclass
class World:
    clock: Clock
    principals: dict[str, Principal]
    queues: dict[str, Queue]
    access: dict[str, set[str]]

    @classmethod
    def build(cls) -> "World":
        billing, senior = Queue.objects.get(name=BILLING_QUEUE), Queue.objects.get(name=SENIOR_QUEUE)
        billing.escalation_queue, senior.escalation_queue = senior, None
        billing.save(update_fields=["escalation_queue"])
        senior.save(update_fields=["escalation_queue"])
        principals = {
            "olga": principal_ensure(name="olga", role="operator", teams=["billing-team", "senior-team"]),
            "omar": principal_ensure(name="omar", role="operator", teams=["billing-team"]),
            "sam": principal_ensure(name="sam", role="supervisor"),
            "bot": principal_ensure(name="billing-bot", role="agent", workflows=[BILLING]),
        }
        billing.teams.set([Team.objects.get(name="billing-team")])
        senior.teams.set([Team.objects.get(name="senior-team")])
        return cls(
            clock=Clock(timezone.now()),
            principals=principals,
            queues={BILLING_QUEUE: billing, SENIOR_QUEUE: senior},
            access={
                "olga": {BILLING_QUEUE, SENIOR_QUEUE},
                "omar": {BILLING_QUEUE},
                "sam": {BILLING_QUEUE, SENIOR_QUEUE},
                "bot": set(),
            },
        )


@dataclass
class Expected:
    """What the reference model says an item looks like."""

    status: str
    queue: str
    holder: str | None = None
    lease_end: datetime | None = None
    snoozed_until: datetime | None = None
    resolution: str = ""
    final_output: object = None

    def holds(self, actor: str, now: datetime) -> bool:
        return self.status == CLAIMED and self.holder == actor and self.lease_end > now

    def claimed_by(self, actor: str, now: datetime) -> None:
        self.status, self.holder, self.lease_end = CLAIMED, actor, now + LEASE

    def reopen(self) -> None:
        self.status, self.holder, self.lease_end = OPEN, None, None


class LifecycleMachine(RuleBasedStateMachine):
    world: ClassVar[World]

    def __init__(self):
        super().__init__()
        self.ids: list[int] = []
        self.model: dict[int, Expected] = {}
        for number, (severity, after) in enumerate(ITEMS):
            self.clock.advance(after)
            request = ReportRequest(
                workflow=BILLING,
                reason="tool_error",
                severity=severity,
                output=invoice_output(invoice_id=f"INV-{number}"),
            )
            item = exception_report(principal=self.world.principals["bot"], request=request).item
            self.ids.append(item.pk)
            self.model[item.pk] = Expected(status=OPEN, queue=BILLING_QUEUE)
        self.events_seen = {item_id: 1 for item_id in self.ids}  # the "raised" event
        self.status_changes = {item_id: 1 for item_id in self.ids}  # raised: "" -> open
        self.last_status = {item_id: OPEN for item_id in self.ids}
        self.previous = self._rows()
        # (rows, events) as the last invariant check saw them, i.e. the state before the next step;
        # and as the step's own check loaded them afterwards, for the invariants to reuse.
        self.settled: tuple[dict, dict] = ({}, {})
        self.latest: tuple[dict, dict] | None = None
        self.terminal: dict[int, dict] = {}

    def teardown(self):
        # Leave no live item behind: the next example's claim-next and sweeps then see only its own.
        live = ExceptionItem.objects.filter(pk__in=self.ids, status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
        for item_id in list(live):
            item_cancel(item_id=item_id, actor=self.world.principals["bot"].user, reason="example over")

    # --- helpers ---------------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self.world.clock

    def _item(self, pick: int) -> int:
        if pick < len(self.ids):
            return self.ids[pick]
        claimed = [item_id for item_id in self.ids if self.model[item_id].status == CLAIMED]
        return claimed[pick % len(claimed)] if claimed else self.ids[pick - len(self.ids)]

    def _some(self, *statuses: str) -> bool:
        """Moves that need a claimed (or live) item are only drawn when one exists; they still pick
        other items and other actors often enough to be refused too."""
        return any(expected.status in statuses for expected in self.model.values())

    @staticmethod
    def _actor(actor: str, expected: Expected) -> str:
        return (expected.holder or "olga") if actor == "holder" else actor

    def _load(self) -> tuple[dict, dict]:
        self.latest = (self._rows(), self._events())
        return self.latest

    def _rows(self) -> dict[int, dict]:
        return {row["id"]: row for row in ExceptionItem.objects.filter(pk__in=self.ids).values()}

    def _events(self) -> dict[int, list[dict]]:
        events: dict[int, list[dict]] = {item_id: [] for item_id in self.ids}
        for event in AuditEvent.objects.filter(item_id__in=self.ids).order_by("id").values():
            events[event["item_id"]].append(event)
        return events

    def _refused(self, error: type, call) -> None:
        """An illegal action raises ``error`` and changes no row and writes no audit event."""
        before = self.settled
        try:
            call()
        except DomainError as raised:
            outcome = type(raised)
        else:
            outcome = None  # an assertion error, not pytest.raises' Failed, so hypothesis shrinks it
        assert outcome is error, f"expected {error.__name__}, got {outcome}"
        after = self._load()
        assert after[0] == before[0], "a refused action changed an item"
        assert after[1] == before[1], "a refused action wrote an audit event"

    def _expect(self, actions: dict[int, list[str]]) -> None:
        """The step wrote exactly these audit actions, and every item matches the model."""
        rows, events = self._load()
        users = {name: principal.user_id for name, principal in self.world.principals.items()}
        for item_id in self.ids:
            new = [event["action"] for event in events[item_id][self.events_seen[item_id] :]]
            assert new == actions.get(item_id, []), (item_id, new)
            self.events_seen[item_id] = len(events[item_id])
            row, expected = rows[item_id], self.model[item_id]
            assert row["status"] == expected.status, (item_id, row["status"], expected)
            assert row["queue_id"] == self.world.queues[expected.queue].pk
            if expected.status == CLAIMED:
                assert row["claimed_by_id"] == users[expected.holder]
                assert row["claim_expires_at"] == expected.lease_end
            if expected.status == SNOOZED:
                assert row["snoozed_until"] == expected.snoozed_until
            if expected.status in (RESOLVED, EXPIRED):
                assert row["resolution"] == expected.resolution
                assert row["final_output"] == expected.final_output

    # --- operator actions ------------------------------------------------------------------------

    @rule(actor=claimers, queue=st.sampled_from([BILLING_QUEUE, SENIOR_QUEUE]))
    def claim_next(self, actor, queue):
        actor = "olga" if actor == "holder" else actor
        principal, now = self.world.principals[actor], self.clock.now()

        def call():
            return item_claim_next(queue=self.world.queues[queue], principal=principal)

        if queue not in self.world.access[actor]:
            self._refused(Forbidden, call)
            return
        rows = self.settled[0]
        waiting = sorted(
            (
                item_id
                for item_id, expected in self.model.items()
                if expected.status == OPEN and expected.queue == queue
            ),
            key=lambda item_id: (-rows[item_id]["priority"], rows[item_id]["due_at"], item_id),
        )
        item = call()
        if not waiting:
            assert item is None
            self._expect({})
            return
        assert item is not None
        assert item.pk == waiting[0], "claim-next must take the most urgent open item"
        self.model[item.pk].claimed_by(actor, now)
        self._expect({item.pk: ["claimed"]})

    @rule(actor=claimers, pick=picks)
    def claim(self, actor, pick):
        item_id, now = self._item(pick), self.clock.now()
        expected = self.model[item_id]
        actor = self._actor(actor, expected)

        def call():
            return item_claim(item_id=item_id, principal=self.world.principals[actor])

        if expected.queue not in self.world.access[actor]:
            self._refused(Forbidden, call)
        elif expected.status == CLAIMED and expected.holder == actor:
            call()
            expected.lease_end = now + LEASE
            self._expect({item_id: ["lease_renewed"]})
        elif expected.status == CLAIMED and expected.lease_end > now:
            self._refused(IllegalTransition, call)  # someone else holds a live lease
        elif expected.status not in (OPEN, CLAIMED, SNOOZED):
            self._refused(IllegalTransition, call)
        else:
            call()
            expected.claimed_by(actor, now)
            self._expect({item_id: ["claimed"]})

    @precondition(lambda self: self._some(CLAIMED))
    @rule(actor=operators, pick=picks)
    def release(self, actor, pick):
        item_id, now = self._item(pick), self.clock.now()
        expected = self.model[item_id]
        actor = self._actor(actor, expected)

        def call():
            return item_release(item_id=item_id, principal=self.world.principals[actor], note="not mine")

        # A supervisor frees anyone else's claim, even a lapsed one; everyone else needs a live lease.
        supervising = actor == "sam" and expected.holder != actor
        legal = expected.status == CLAIMED if supervising else expected.holds(actor, now)
        if not legal:
            self._refused(IllegalTransition, call)
            return
        call()
        expected.reopen()
        self._expect({item_id: ["released"]})

    @precondition(lambda self: self._some(CLAIMED))
    @rule(actor=operators, pick=picks)
    def renew(self, actor, pick):
        item_id, now = self._item(pick), self.clock.now()
        expected = self.model[item_id]
        actor = self._actor(actor, expected)

        def call():
            return item_renew_lease(item_id=item_id, principal=self.world.principals[actor])

        if not expected.holds(actor, now):
            self._refused(IllegalTransition, call)
            return
        call()
        expected.lease_end = now + LEASE
        self._expect({item_id: ["lease_renewed"]})

    @precondition(lambda self: self._some(CLAIMED))
    @rule(
        actor=operators,
        pick=picks,
        how=st.sampled_from(["approve", "modify", "reject", "escalate"])
        | st.sampled_from(["modify_invalid", "reject_without_reason", "shelve"]),
    )
    def resolve(self, actor, pick, how):
        item_id, now = self._item(pick), self.clock.now()
        expected = self.model[item_id]
        actor = self._actor(actor, expected)
        action = {"modify_invalid": "modify", "reject_without_reason": "reject"}.get(how, how)
        output = {"modify": EDITED_OUTPUT, "modify_invalid": INVALID_OUTPUT}.get(how)
        reason_code = "wrong_amount" if how == "reject" else ""

        def call():
            return item_resolve(
                item_id=item_id,
                principal=self.world.principals[actor],
                action=action,
                output=output,
                reason_code=reason_code,
                note="checked",
            )

        if how == "shelve":
            self._refused(InvalidInput, call)  # not an action at all, whatever the item's state
        elif not expected.holds(actor, now):
            self._refused(IllegalTransition, call)
        elif how == "escalate" and expected.queue == SENIOR_QUEUE:
            self._refused(IllegalTransition, call)  # the senior queue escalates nowhere
        elif how in ("modify_invalid", "reject_without_reason"):
            self._refused(InvalidInput, call)
        elif how == "escalate":
            priority = self.settled[0][item_id]["priority"]
            call()
            expected.reopen()
            expected.queue = SENIOR_QUEUE
            self._expect({item_id: ["escalated"]})
            assert self.latest[0][item_id]["priority"] == priority + ESCALATION_PRIORITY_BOOST
        else:
            proposal = self.settled[0][item_id]["proposal"]
            call()
            expected.status, expected.holder, expected.lease_end = RESOLVED, None, None
            expected.resolution = action
            expected.final_output = {"approve": proposal, "modify": EDITED_OUTPUT, "reject": None}[action]
            self._expect({item_id: ["resolved"]})
            row = self.latest[0][item_id]
            assert (row["resolved_by_id"], row["resolved_at"]) == (self.world.principals[actor].user_id, now)

    @precondition(lambda self: self._some(CLAIMED))
    @rule(
        actor=operators,
        pick=picks,
        seconds=st.sampled_from([-60, 0, 1, int(MAX_SNOOZE.total_seconds()), int(MAX_SNOOZE.total_seconds()) + 1])
        | st.integers(60, 7200),
    )
    def snooze(self, actor, pick, seconds):
        item_id, now = self._item(pick), self.clock.now()
        expected = self.model[item_id]
        actor = self._actor(actor, expected)
        until = now + timedelta(seconds=seconds)

        def call():
            return item_snooze(item_id=item_id, principal=self.world.principals[actor], until=until)

        if not expected.holds(actor, now):
            self._refused(IllegalTransition, call)
        elif until <= now or until - now > MAX_SNOOZE:
            self._refused(InvalidInput, call)
        else:
            call()
            expected.status, expected.holder, expected.lease_end, expected.snoozed_until = SNOOZED, None, None, until
            self._expect({item_id: ["snoozed"]})

    @precondition(lambda self: self._some(CLAIMED))
    @rule(
        pick=st.integers(len(ITEMS), 2 * len(ITEMS) - 1),
        move=st.sampled_from(["approve", "modify", "reject", "escalate", "snooze", "release", "renew"]),
    )
    def holder_moves_on(self, pick, move):
        """The everyday path, drawn on purpose: whoever holds a claimed item finishes with it or sets
        it aside (the lease may have lapsed meanwhile, and then the move is refused)."""
        if move in ("release", "renew"):
            getattr(self, move)("holder", pick)
        elif move == "snooze":
            self.snooze("holder", pick, 3600)
        else:
            self.resolve("holder", pick, move)

    @precondition(lambda self: self._some(*ACTIVE_STATUSES))
    @rule(pick=picks)
    def cancel(self, pick):
        item_id = self._item(pick)
        expected = self.model[item_id]

        def call():
            return item_cancel(item_id=item_id, actor=self.world.principals["bot"].user, reason="superseded")

        if expected.status in TERMINAL_STATUSES:
            self._refused(IllegalTransition, call)
            return
        call()
        expected.status, expected.holder, expected.lease_end = CANCELLED, None, None
        self._expect({item_id: ["cancelled"]})

    @rule(actor=operators, pick=picks)
    def comment(self, actor, pick):
        item_id = self._item(pick)
        expected = self.model[item_id]
        actor = self._actor(actor, expected)

        def call():
            return item_comment_add(item_id=item_id, principal=self.world.principals[actor], text="looking")

        if actor != "sam" and expected.queue not in self.world.access[actor]:
            self._refused(Forbidden, call)
            return
        call()
        self._expect({item_id: ["commented"]})

    # --- time and sweeps -------------------------------------------------------------------------

    @rule(seconds=lease_edges)
    def time_passes(self, seconds):
        self.clock.advance(seconds)
        self._expect({})

    @precondition(lambda self: self._some(CLAIMED))
    @rule(seconds=lease_edges)
    def leases_expire(self, seconds):
        self.clock.advance(seconds)
        now = self.clock.now()
        lapsed = [i for i, e in self.model.items() if e.status == CLAIMED and e.lease_end <= now]
        assert sweeps.claims_expire(now=now) == len(lapsed)
        for item_id in lapsed:
            self.model[item_id].reopen()
        self._expect({item_id: ["lease_expired"] for item_id in lapsed})

    @precondition(lambda self: self._some(SNOOZED))
    @rule(extra=st.sampled_from([0, 1]) | st.integers(0, 3600))
    def snoozes_wake(self, extra):
        snoozed = [e.snoozed_until for e in self.model.values() if e.status == SNOOZED]
        if snoozed:
            self.clock.reach(min(snoozed))
        self.clock.advance(extra)
        now = self.clock.now()
        woken = [i for i, e in self.model.items() if e.status == SNOOZED and e.snoozed_until <= now]
        assert sweeps.snoozes_wake(now=now) == len(woken)
        for item_id in woken:
            self.model[item_id].status = OPEN
        self._expect({item_id: ["woke"] for item_id in woken})

    @rule(seconds=st.integers(0, 4000))
    def sla_sweep(self, seconds):
        self.clock.advance(seconds)
        now = self.clock.now()
        rows = self.settled[0]
        breaching = [
            item_id
            for item_id, row in rows.items()
            if row["status"] in ACTIVE_STATUSES and row["due_at"] <= now and row["sla_stage"] < 2
        ]
        sweeps.sla_escalate(now=now)
        self._expect({item_id: ["sla_breached"] for item_id in breaching})
        after = self.latest[0]
        for item_id in breaching:
            assert after[item_id]["priority"] > rows[item_id]["priority"]
            assert after[item_id]["sla_breached_at"] == now

    @precondition(lambda self: self._some(*ACTIVE_STATUSES))
    @rule(jump=st.integers(0, 3))
    def deadlines_pass(self, jump):
        rows = self.settled[0]
        live = [row["expires_at"] for item_id, row in rows.items() if self.model[item_id].status in ACTIVE_STATUSES]
        if live and jump == 0:  # a day's jump ends most of the example, so take it one time in four
            self.clock.reach(min(live))
        now = self.clock.now()
        due = [i for i, e in self.model.items() if e.status in ACTIVE_STATUSES and rows[i]["expires_at"] <= now]
        assert sweeps.items_expire(now=now) == len(due)
        for item_id in due:
            expected = self.model[item_id]
            expected.status, expected.holder, expected.lease_end = EXPIRED, None, None
            expected.resolution, expected.final_output = Resolution.FALLBACK, None  # billing falls back to reject
        self._expect({item_id: ["expired"] for item_id in due})

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def the_lifecycle_invariants_hold(self):
        # Every rule ends by loading the state it left (``_expect`` or ``_refused``); load it here otherwise.
        rows, events = self.latest or self._load()
        self.settled, self.latest = (rows, events), None
        self._claimed_exactly_when_someone_holds_a_lease(rows)
        self._terminal_items_never_change(rows)
        self._timestamps_never_go_backwards_and_captured_state_never_changes(rows)
        self._every_status_change_has_its_audit_event(rows, events)
        self._at_most_one_live_claim_and_only_its_holder_acts(events)

    @staticmethod
    def _claimed_exactly_when_someone_holds_a_lease(rows):
        for row in rows.values():
            holds = row["claimed_by_id"] is not None and row["claim_expires_at"] is not None
            assert (row["status"] == CLAIMED) == holds, row

    def _terminal_items_never_change(self, rows):
        for item_id, row in rows.items():
            if item_id in self.terminal:
                assert row == self.terminal[item_id], "a resolved, cancelled or expired item changed"
            elif row["status"] in TERMINAL_STATUSES:
                self.terminal[item_id] = row

    def _timestamps_never_go_backwards_and_captured_state_never_changes(self, rows):
        for item_id, row in rows.items():
            before = self.previous[item_id]
            assert row["updated_at"] >= before["updated_at"]
            assert row["updated_at"] >= row["raised_at"]
            if before["first_claimed_at"] is not None:
                assert row["first_claimed_at"] == before["first_claimed_at"]
            if row["first_claimed_at"] is not None:
                assert row["first_claimed_at"] >= row["queued_at"]
            if row["resolved_at"] is not None:
                assert row["resolved_at"] >= row["raised_at"]
            assert [row[name] for name in CAPTURED] == [before[name] for name in CAPTURED]
        self.previous = rows

    def _every_status_change_has_its_audit_event(self, rows, events):
        for item_id, row in rows.items():
            if row["status"] != self.last_status[item_id]:
                self.status_changes[item_id] += 1
                self.last_status[item_id] = row["status"]
        for item_id, log in events.items():
            transitions = [event for event in log if event["from_status"] != event["to_status"]]
            assert len(transitions) == self.status_changes[item_id], (item_id, transitions)
            times = [event["created_at"] for event in log]
            assert times == sorted(times), "audit events of an item must be in time order"
            # The log replays: each event starts where the previous one ended, and ends where the item is.
            assert log[0]["action"] == "raised"
            for earlier, later in itertools.pairwise(log):
                assert later["from_status"] == earlier["to_status"], (earlier, later)
            assert log[-1]["to_status"] == rows[item_id]["status"]

    @staticmethod
    def _at_most_one_live_claim_and_only_its_holder_acts(events):
        for log in events.values():
            holder, lease_until = None, None
            for event in log:
                at, action = event["created_at"], event["action"]
                if action == "claimed":
                    if event["from_status"] == CLAIMED:
                        assert lease_until <= at, "an item was claimed while another claim on it was live"
                    holder, lease_until = event["actor_id"], datetime.fromisoformat(event["payload"]["lease_until"])
                elif action == "lease_renewed":
                    assert event["actor_id"] == holder
                    lease_until = datetime.fromisoformat(event["payload"]["lease_until"])
                elif action in ("resolved", "snoozed", "escalated"):
                    assert event["actor_id"] == holder, "only the lease holder may act"
                    assert lease_until > at, "only a live lease may act"
                if event["to_status"] != CLAIMED:
                    holder, lease_until = None, None


@pytest.mark.timeout(600)  # a pass takes 10-25 s; a failure needs minutes to shrink to a short sequence
@pytest.mark.django_db
def test_random_lifecycle_sequences_keep_the_item_invariants(billing_workflow, monkeypatch):
    world = World.build()
    monkeypatch.setattr(timezone, "now", world.clock.now)
    monkeypatch.setattr(LifecycleMachine, "world", world, raising=False)

    run_state_machine_as_test(
        LifecycleMachine,
        settings=hypothesis_settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            # Explaining a failure traces every line of every shrink attempt, which makes shrinking
            # through the ORM take minutes; the shrunk sequence of steps is explanation enough.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
