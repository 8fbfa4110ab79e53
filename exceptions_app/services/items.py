"""Lifecycle of an exception item: each transition is one transaction with one audit event.

Operators never hold a database transaction while they review: a claim is a lease recorded on
the row, and every later action is a conditional update that fails if the lease was lost.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.base import DEFERRED
from django.utils import timezone

from exceptions_app import interrupts, rules
from exceptions_app.db_fast_paths import prepared_cursor
from exceptions_app.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, VoteRefused
from exceptions_app.models import (
    TERMINAL_STATUSES,
    ExceptionItem,
    ItemStatus,
    Principal,
    Queue,
    Resolution,
    Role,
)
from exceptions_app.policy.evaluation import output_schema_errors, policy_compile
from exceptions_app.services.audit import audit_record
from exceptions_app.services.consensus import PENDING, consensus_vote, voted_on
from exceptions_app.services.item_changes import CLAIM_CLEARED, item_state_change
from exceptions_app.services.judgements import judgement_record
from exceptions_app.tracing import spans

ESCALATION_PRIORITY_BOOST = 100
MAX_SNOOZE = timedelta(days=30)
RESOLVE_ACTIONS = ("approve", "modify", "reject", "escalate", "respond")


def _lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.TOLLGATE_CLAIM_LEASE_SECONDS)


def queue_check_access(*, principal: Principal | None, queue: Queue) -> None:
    if principal is None or principal.role == Role.AGENT:
        raise Forbidden("only operators and supervisors work queues")
    if rules.principal_is_supervisor(principal):
        return
    if not queue.teams.filter(members=principal).exists():
        raise Forbidden(f"none of your teams works queue {queue.name!r}")


def _locked_item(item_id: int) -> ExceptionItem:
    item = ExceptionItem.objects.select_for_update(of=("self",)).select_related("queue").filter(pk=item_id).first()
    if item is None:
        raise NotFound(f"no exception item {item_id}")
    return item


def _lock_for_claim(candidates: QuerySet) -> QuerySet:
    # SKIP LOCKED: concurrent claimers each take a different head instead of queueing on one row.
    # SQLite ignores it; its single writer (IMMEDIATE transactions) serialises claims instead.
    return candidates.select_for_update(skip_locked=True, of=("self",))


# On PostgreSQL claim-next is one statement: check the operator's teams, lock the head of the queue
# (served by the partial index item_claim_order), mark it claimed and write its audit event,
# committed at once. It returns the item's lifecycle columns only: reading back the captured state
# (kilobytes of JSON) is for whoever shows the item next.
CLAIM_HEAD_LOCK = "FOR UPDATE SKIP LOCKED"
_TEAM_CHECK = """
      AND EXISTS (
          SELECT 1 FROM exceptions_app_queue_teams AS works
          JOIN exceptions_app_principal_teams AS member ON member.team_id = works.team_id
          WHERE works.queue_id = %(queue)s AND member.principal_id = %(principal)s
      )"""
_CLAIM_NEXT_SQL = """
WITH head AS (
    -- Whoever voted on an item (a first approval, a blind judgement) never takes it again: one probe
    -- of the vote table's (item, voter) index per candidate.
    SELECT id FROM exceptions_app_exceptionitem
    WHERE queue_id = %(queue)s AND status = 'open'{team_check}
      AND NOT EXISTS (
          SELECT 1 FROM exceptions_app_vote AS vote
          WHERE vote.item_id = exceptions_app_exceptionitem.id AND vote.voter_id = %(user)s
      )
    ORDER BY priority DESC, due_at, id
    LIMIT 1
    {lock}
), claimed AS (
    UPDATE exceptions_app_exceptionitem AS item
    SET status = 'claimed', claimed_by_id = %(user)s, claimed_at = %(now)s, claim_expires_at = %(lease)s,
        first_claimed_at = coalesce(item.first_claimed_at, %(now)s), updated_at = %(now)s
    FROM head
    WHERE item.id = head.id
    RETURNING item.id, item.queue_id, item.workflow_id, item.status, item.priority, item.due_at,
              item.claimed_by_id, item.claimed_at, item.claim_expires_at, item.first_claimed_at, item.updated_at
), event AS (
    INSERT INTO exceptions_app_auditevent
        (item_id, workflow_id, action, from_status, to_status, actor_id, actor_label, payload, created_at)
    SELECT id, workflow_id, 'claimed', 'open', 'claimed', %(user)s, %(label)s,
           jsonb_build_object('lease_until', %(lease_text)s::text), %(now)s
    FROM claimed
)
SELECT * FROM claimed
"""


def claim_next_sql(*, team_check: bool) -> str:
    """The claim-next statement; ``team_check`` adds the operator's access check (supervisors skip it).
    The lock is read at each call: the concurrency test's control experiment removes it."""
    return _CLAIM_NEXT_SQL.format(team_check=_TEAM_CHECK if team_check else "", lock=CLAIM_HEAD_LOCK)


def _item_from_columns(values: dict) -> ExceptionItem:
    """An item built from some of its columns; the others load on first access, as with only()."""
    fields = ExceptionItem._meta.concrete_fields
    return ExceptionItem.from_db(
        connection.alias,
        [field.attname for field in fields],
        [values.get(field.attname, DEFERRED) for field in fields],
    )


def _claim_next_in_one_statement(queue: Queue, principal: Principal, now: datetime) -> ExceptionItem | None:
    user = principal.user
    lease = _lease_end(now)
    params = {
        "queue": queue.pk,
        "principal": principal.pk,
        "user": user.pk,
        "now": now,
        "lease": lease,
        "label": user.get_username(),
        "lease_text": lease.isoformat(),
    }
    team_check = not rules.principal_is_supervisor(principal)
    # One statement is its own transaction: no BEGIN/COMMIT round trips around it. Prepared once
    # per connection (db_fast_paths.prepared_cursor says why).
    with prepared_cursor() as cursor:
        cursor.execute(claim_next_sql(team_check=team_check), params)
        row = cursor.fetchone()
        columns = [column.name for column in cursor.description]
    item = _item_from_columns(dict(zip(columns, row, strict=True))) if row else None
    if item is None and team_check:
        queue_check_access(principal=principal, queue=queue)  # nothing claimed: empty, or not allowed?
    return item


def _claimed_by(item: ExceptionItem, *, user, now: datetime) -> dict:
    """The changes that lease ``item`` to ``user`` from now, from whatever state it was in."""
    return {
        "status": ItemStatus.CLAIMED,
        "claimed_by": user,
        "claimed_at": now,
        "claim_expires_at": _lease_end(now),
        "first_claimed_at": item.first_claimed_at or now,
    }


def _claim(item: ExceptionItem, *, user, now: datetime) -> None:
    changes = _claimed_by(item, user=user, now=now)
    payload = {"lease_until": changes["claim_expires_at"].isoformat()}
    item_state_change(item, action="claimed", actor=user, changes=changes, payload=payload, now=now)


def item_claim_next(*, queue: Queue, principal: Principal) -> ExceptionItem | None:
    """Lease the most urgent open item of ``queue`` (priority, then due time, then arrival)."""
    if principal is None or principal.role == Role.AGENT:
        raise Forbidden("only operators and supervisors work queues")
    if connection.vendor == "postgresql":
        return _claim_next_in_one_statement(queue, principal, timezone.now())
    queue_check_access(principal=principal, queue=queue)
    user = principal.user
    with transaction.atomic():
        candidates = (
            ExceptionItem.objects.filter(queue=queue, status=ItemStatus.OPEN)
            .exclude(votes__voter=user)
            .order_by("-priority", "due_at", "id")
        )
        item = _lock_for_claim(candidates).first()
        if item is None:
            return None
        _claim(item, user=user, now=timezone.now())
    return item


def item_claim(*, item_id: int, principal: Principal) -> ExceptionItem:
    """Lease one given item. Claiming your own claimed item renews the lease."""
    user = principal.user
    with transaction.atomic():
        item = _locked_item(item_id)
        queue_check_access(principal=principal, queue=item.queue)
        now = timezone.now()
        if item.status == ItemStatus.CLAIMED and item.claimed_by_id == user.pk:
            return _renew(item, user=user, now=now)
        if item.status == ItemStatus.CLAIMED and item.claim_expires_at > now:
            raise IllegalTransition(f"item {item_id} is claimed by {item.claimed_by.get_username()}")
        if item.status not in (ItemStatus.OPEN, ItemStatus.CLAIMED, ItemStatus.SNOOZED):
            raise IllegalTransition(f"item {item_id} is {item.status} and cannot be claimed")
        if voted_on(item_id=item.pk, user=user):
            message = f"you already voted on item {item_id}; it waits for someone else"
            raise VoteRefused(message, code="voter_already_counted")
        _claim(item, user=user, now=now)
    return item


def _renew(item: ExceptionItem, *, user, now: datetime) -> ExceptionItem:
    lease = _lease_end(now)
    item_state_change(
        item,
        action="lease_renewed",
        actor=user,
        changes={"claim_expires_at": lease},
        payload={"lease_until": lease.isoformat()},
        now=now,
    )
    return item


def _held_by(item: ExceptionItem, *, user, now: datetime) -> None:
    """Raise unless ``user`` holds a live lease on ``item``."""
    if item.status != ItemStatus.CLAIMED or item.claimed_by_id != user.pk:
        raise IllegalTransition(f"item {item.pk} is {item.status} and not claimed by you; claim it first")
    if item.claim_expires_at <= now:
        raise IllegalTransition(f"your claim on item {item.pk} expired; claim it again")


def item_renew_lease(*, item_id: int, principal: Principal) -> ExceptionItem:
    with transaction.atomic():
        item = _locked_item(item_id)
        now = timezone.now()
        _held_by(item, user=principal.user, now=now)
        return _renew(item, user=principal.user, now=now)


def item_release(*, item_id: int, principal: Principal, note: str = "") -> ExceptionItem:
    """Give a claimed item back to its queue. Supervisors may release anyone's claim."""
    user = principal.user
    with transaction.atomic():
        item = _locked_item(item_id)
        now = timezone.now()
        if not rules.principal_is_supervisor(principal) or item.claimed_by_id == user.pk:
            _held_by(item, user=user, now=now)
        elif item.status != ItemStatus.CLAIMED:
            raise IllegalTransition(f"item {item_id} is {item.status}, not claimed")
        item_state_change(
            item,
            action="released",
            actor=user,
            changes={"status": ItemStatus.OPEN, **CLAIM_CLEARED},
            payload={"note": note, "holder": item.claimed_by.get_username()},
            now=now,
        )
    return item


def item_resolve(
    *,
    item_id: int,
    principal: Principal,
    action: str,
    output: object = None,
    reason_code: str = "",
    note: str = "",
    hold_delivery: timedelta = timedelta(),
) -> ExceptionItem:
    """Approve, modify (edited output checked against the schema of the policy that held it),
    reject (with a reason code) or escalate (to the queue's escalation queue, with more priority).
    An item with a LangGraph interrupt takes only the actions its config allows, and may be answered
    with a text (respond: a rejection with reason code ``human_response``, the text as the note).
    ``hold_delivery`` keeps the resolution unsent that long, so it can be undone (services/undo.py)."""
    if action not in RESOLVE_ACTIONS:
        raise InvalidInput(
            f"action must be one of {', '.join(RESOLVE_ACTIONS)}",
            fields=[{"path": "action", "message": "unknown action"}],
        )
    user = principal.user
    with transaction.atomic():
        item = (
            ExceptionItem.objects.select_for_update(of=("self",))
            .select_related("queue__escalation_queue", "policy_version", "workflow")
            .filter(pk=item_id)
            .first()
        )
        if item is None:
            raise NotFound(f"no exception item {item_id}")
        now = timezone.now()
        _held_by(item, user=user, now=now)  # first: whoever does not hold the item learns that, whatever they sent
        problem = rules.resolution_reason_problem(action=action, reason_code=reason_code)
        if problem:
            raise InvalidInput(f"reason_code: {problem}", fields=[{"path": "reason_code", "message": problem}])
        action, reason_code = interrupts.resolve_action(action=action, reason_code=reason_code)
        refused = interrupts.resolution_problem(interrupt=item.interrupt, action=action, note=note)
        if refused:
            field, message = refused
            error = IllegalTransition if field == "action" else InvalidInput
            raise error(f"{field}: {message}", fields=[{"path": field, "message": message}])
        if action == "respond":
            action = "reject"
        if action == "escalate":
            return _escalate(item, user=user, note=note, now=now)
        final_output = item.proposal
        if action == "modify":
            version = item.policy_version
            errors = output_schema_errors(policy_compile(version.pk, version.document).output_validator, output)
            if errors:
                raise InvalidInput("the edited output does not match the workflow's schema", fields=errors)
            final_output = output
        elif action == "reject":
            final_output = None
        ballot = {"output": final_output, "reason_code": reason_code, "note": note}
        settled = consensus_vote(item=item, principal=principal, action=action, now=now, **ballot)
        if settled is PENDING:  # a vote towards a decision that needs more people: back to the queue
            return item
        if settled is not None:
            action, final_output, reason_code = settled.resolution, settled.final_output, settled.reason_code
        spans.queue_wait_end(item, outcome=action, now=now)
        item_state_change(
            item,
            action="resolved",
            actor=user,
            # The resolver is recorded in resolved_by; a resolved item holds no claim.
            changes={
                "status": ItemStatus.RESOLVED,
                "resolution": Resolution(action),
                "final_output": final_output,
                "reason_code": reason_code,
                "resolution_note": note,
                "resolved_by": user,
                "resolved_at": now,
                **CLAIM_CLEARED,
            },
            payload={
                "resolution": action,
                "reason_code": reason_code,
                "note": note,
                **({"final_output": final_output} if action == "modify" else {}),
                **(settled.payload if settled is not None else {}),
            },
            now=now,
        )
        judgement_record(item=item, now=now, hold=hold_delivery)
    return item


def _escalate(item: ExceptionItem, *, user, note: str, now: datetime) -> ExceptionItem:
    target = item.queue.escalation_queue
    if target is None:
        raise IllegalTransition(f"queue {item.queue.name!r} has no escalation queue")
    priority = item.priority + ESCALATION_PRIORITY_BOOST
    item_state_change(
        item,
        action="escalated",
        actor=user,
        changes={"status": ItemStatus.OPEN, "queue": target, "priority": priority, **CLAIM_CLEARED},
        payload={"from_queue": item.queue.name, "to_queue": target.name, "priority": priority, "note": note},
        now=now,
    )
    return item


def item_snooze(*, item_id: int, principal: Principal, until: datetime, note: str = "") -> ExceptionItem:
    """Put a claimed item aside until ``until``; a beat job wakes it."""
    user = principal.user
    with transaction.atomic():
        item = _locked_item(item_id)
        now = timezone.now()
        _held_by(item, user=user, now=now)
        if until <= now or until - now > MAX_SNOOZE:
            raise InvalidInput(
                "snooze until a time in the next 30 days",
                fields=[{"path": "until", "message": "must be in the future, at most 30 days ahead"}],
            )
        item_state_change(
            item,
            action="snoozed",
            actor=user,
            changes={"status": ItemStatus.SNOOZED, "snoozed_until": until, **CLAIM_CLEARED},
            payload={"until": until.isoformat(), "note": note},
            now=now,
        )
    return item


def item_comment_add(*, item_id: int, principal: Principal, text: str):
    """A comment is an audit event on the item's timeline; it changes no state."""
    with transaction.atomic():
        item = _locked_item(item_id)
        if principal.role == Role.OPERATOR:
            queue_check_access(principal=principal, queue=item.queue)
        return audit_record(
            action="commented",
            actor=principal.user,
            item=item,
            from_status=item.status,
            to_status=item.status,
            payload={"text": text},
        )


def item_cancel(*, item_id: int, actor, reason: str = "") -> ExceptionItem:
    """The agent withdraws an item that is not yet resolved, cancelled or expired."""
    with transaction.atomic():
        item = _locked_item(item_id)
        if item.status in TERMINAL_STATUSES:
            raise IllegalTransition(f"item {item_id} is {item.status} and can no longer be cancelled")
        now = timezone.now()
        spans.queue_wait_end(item, outcome="cancelled", now=now)
        item_state_change(
            item,
            action="cancelled",
            actor=actor,
            changes={"status": ItemStatus.CANCELLED, **CLAIM_CLEARED},
            payload={"reason": reason} if reason else {},
            now=now,
        )
    return item


def _supervisor(principal: Principal) -> None:
    if not rules.principal_is_supervisor(principal):
        raise Forbidden("only supervisors reassign or re-prioritise items")


def item_reassign(*, item_id: int, principal: Principal, to_username: str) -> ExceptionItem:
    """A supervisor hands an open or claimed item to an operator, who holds it under a fresh lease."""
    _supervisor(principal)
    target = Principal.objects.select_related("user").filter(user__username=to_username).first()
    if target is None or target.role == Role.AGENT:
        raise InvalidInput(
            f"no operator called {to_username!r}", fields=[{"path": "to", "message": "unknown operator"}]
        )
    with transaction.atomic():
        item = _locked_item(item_id)
        queue_check_access(principal=target, queue=item.queue)
        if item.status not in (ItemStatus.OPEN, ItemStatus.CLAIMED, ItemStatus.SNOOZED):
            raise IllegalTransition(f"item {item_id} is {item.status} and cannot be reassigned")
        if voted_on(item_id=item.pk, user=target.user):
            raise VoteRefused(f"{to_username} already voted on item {item_id}", code="voter_already_counted")
        holder = item.claimed_by.get_username() if item.claimed_by_id else None
        now = timezone.now()
        item_state_change(
            item,
            action="reassigned",
            actor=principal.user,
            changes=_claimed_by(item, user=target.user, now=now),
            payload={"from": holder, "to": to_username},
            now=now,
        )
    return item


def item_reprioritise(*, item_id: int, principal: Principal, priority: int, note: str = "") -> ExceptionItem:
    _supervisor(principal)
    if not -10_000 <= priority <= 10_000:
        raise InvalidInput(
            "priority must be between -10000 and 10000", fields=[{"path": "priority", "message": "out of range"}]
        )
    with transaction.atomic():
        item = _locked_item(item_id)
        if item.is_terminal:
            raise IllegalTransition(f"item {item_id} is {item.status}; its priority no longer matters")
        item_state_change(
            item,
            action="reprioritised",
            actor=principal.user,
            changes={"priority": priority},
            payload={"from": item.priority, "to": priority, "note": note},
        )
    return item
