"""Decisions that take more than one person: N-of-M approvals (four eyes) and blind multi-review.

``consensus_vote`` is asked by ``item_resolve`` once the resolver's lease and input are checked.
It answers ``None`` when the item's policy asks for one person (the resolution goes ahead as
before), ``PENDING`` when it recorded a vote and gave the item back to its queue for someone else,
or a ``Settled`` decision: the resolution the votes reached, which ``item_resolve`` then writes and
delivers as usual. Every vote is an audit event. A blind judgement's event names no verdict: the
judges must not see each other's until the item closes (selectors hide the votes till then).

Votes are serialised by the item's row lock; the Vote table's unique constraints hold even without
it (one vote per person, per seat, per team), so two voters racing for the last seat cannot both win.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction

from exceptions_app.errors import VoteRefused
from exceptions_app.models import ExceptionItem, ItemStatus, Principal, Queue, Resolution, Vote, VotePurpose
from exceptions_app.policy.consensus import ApprovalRule, BlindReview, approval_rule, blind_review
from exceptions_app.rules import iso_timestamp
from exceptions_app.services.audit import audit_record
from exceptions_app.services.item_changes import CLAIM_CLEARED, item_state_change


@dataclass(frozen=True)
class Settled:
    resolution: str
    final_output: object
    reason_code: str = ""
    payload: dict = field(default_factory=dict)


PENDING = object()


def vote_present(vote: Vote) -> dict:
    return {
        "by": vote.voter.get_username(),
        "at": iso_timestamp(vote.created_at),
        "vote": vote.resolution,
        "team": vote.team.name if vote.team_id else None,
        "reason_code": vote.reason_code,
        "note": vote.note,
    }


def _votes(item: ExceptionItem, purpose: str) -> list[Vote]:
    return list(Vote.objects.filter(item=item, purpose=purpose).select_related("voter", "team").order_by("seat"))


_BROKEN = {
    "vote_one_per_person": ("voter_already_counted", "you already voted on this item; it needs someone else"),
    "vote_one_per_team": ("team_already_counted", "your team already approved this item; it needs another team"),
    "vote_one_per_seat": ("vote_conflict", "another vote on this item landed first; reload it"),
}


def _vote_insert(**values) -> Vote:
    """Insert one vote; a constraint the insert breaks is a vote that cannot count, said as such."""
    try:
        with transaction.atomic():
            return Vote.objects.create(**values)
    except IntegrityError as error:
        refusal = next((refusal for name, refusal in _BROKEN.items() if name in str(error)), None)
        if refusal is None:
            raise
        raise VoteRefused(refusal[1], code=refusal[0]) from None


def _team_for(principal: Principal, votes: list[Vote]):
    """The voter's first team that has not voted yet (under ``distinct: teams``)."""
    counted = {vote.team_id for vote in votes}
    teams = list(principal.teams.order_by("name"))
    if not teams:
        message = "this item needs approvals from distinct teams, and you are in none"
        raise VoteRefused(message, code="approver_has_no_team")
    team = next((team for team in teams if team.pk not in counted), None)
    if team is None:
        names = ", ".join(team.name for team in teams)
        message = f"your team ({names}) already approved this item; it needs another team"
        raise VoteRefused(message, code="team_already_counted")
    return team


def _back_to_queue(item: ExceptionItem, *, action: str, user, payload: dict, now: datetime, queue: Queue | None = None):
    changes = {"status": ItemStatus.OPEN, **CLAIM_CLEARED}
    if queue is not None:
        changes["queue"] = queue
    item_state_change(item, action=action, actor=user, changes=changes, payload=payload, now=now)


def _approve(item, principal, rule: ApprovalRule, *, action, output, reason_code, note, now):
    user = principal.user
    votes = _votes(item, VotePurpose.APPROVAL)
    if any(vote.voter_id == user.pk for vote in votes):
        message = f"you already voted on item {item.pk}; it needs {rule.required} different people"
        raise VoteRefused(message, code="voter_already_counted")
    if action == "modify" and votes:
        # The others approved another output: the edit needs approvals of its own.
        withdrawn = [vote_present(vote) for vote in votes]
        Vote.objects.filter(pk__in=[vote.pk for vote in votes]).delete()
        audit_record(
            action="approvals_reset", actor=user, item=item, from_status=item.status, to_status=item.status,
            payload={"withdrawn": withdrawn}, at=now,
        )  # fmt: skip
        votes = []
    team = _team_for(principal, votes) if rule.distinct == "teams" else None
    vote = _vote_insert(
        item=item, purpose=VotePurpose.APPROVAL, seat=len(votes) + 1, voter=user, team=team, resolution=action,
        output=output if action == "modify" else None, reason_code=reason_code, note=note, created_at=now,
    )  # fmt: skip
    votes.append(vote)
    approvals = [vote for vote in votes if vote.resolution != Resolution.REJECT]
    rejections = [vote for vote in votes if vote.resolution == Resolution.REJECT]
    tally = {"approvals": len(approvals), "rejections": len(rejections), "required": rule.required}
    audit_record(
        action="voted", actor=user, item=item, from_status=item.status, to_status=item.status,
        payload={"purpose": "approval", "vote": action, "seat": vote.seat, "team": team.name if team else None,
                 "reason_code": reason_code, "note": note, **tally},
        at=now,
    )  # fmt: skip
    voters = [vote_present(each) for each in votes]
    if action == "reject" and len(rejections) >= rule.rejections_required:
        return Settled(Resolution.REJECT, None, reason_code, {"approvers": voters})
    if action != "reject" and len(approvals) >= rule.required:
        edit = next((each for each in approvals if each.resolution == Resolution.MODIFY), None)
        if edit is None:
            return Settled(Resolution.APPROVE, item.proposal, "", {"approvers": voters})
        return Settled(Resolution.MODIFY, edit.output, "", {"approvers": voters})
    _back_to_queue(item, action="awaiting_approval", user=user, payload=tally, now=now)
    return PENDING


def _agree(votes: list[Vote]) -> bool:
    first = votes[0]
    return all(vote.resolution == first.resolution and vote.output == first.output for vote in votes)


def _judge(item, principal, review: BlindReview, *, action, output, reason_code, note, now):
    user = principal.user
    votes = _votes(item, VotePurpose.JUDGEMENT)
    judged_by_me = any(vote.voter_id == user.pk for vote in votes)
    if len(votes) >= review.judgements:  # the judges disagreed: this is the adjudicator's final decision
        if judged_by_me:
            raise VoteRefused(f"you judged item {item.pk}; someone else adjudicates it", code="judge_cannot_adjudicate")
        return Settled(action, output, reason_code, {"adjudicated": True, "judgements": len(votes)})
    if judged_by_me:
        raise VoteRefused(f"you already judged item {item.pk}; it needs someone else", code="voter_already_counted")
    vote = _vote_insert(
        item=item, purpose=VotePurpose.JUDGEMENT, seat=len(votes) + 1, voter=user, resolution=action,
        output=output if action == "modify" else None, reason_code=reason_code, note=note, created_at=now,
    )  # fmt: skip
    votes.append(vote)
    tally = {"judgements": len(votes), "required": review.judgements}
    # The event says that a judgement was made, not which: the others must not see it before the close.
    audit_record(
        action="judged", actor=user, item=item, from_status=item.status, to_status=item.status,
        payload={"purpose": "judgement", "seat": vote.seat, **tally}, at=now,
    )  # fmt: skip
    if len(votes) < review.judgements:
        _back_to_queue(item, action="awaiting_judgement", user=user, payload=tally, now=now)
        return PENDING
    if _agree(votes):
        return Settled(action, output, reason_code, {"judgements": len(votes), "agreed": True})
    queue = Queue.objects.get(name=review.adjudication_queue)
    payload = {**tally, "to_queue": queue.name}
    _back_to_queue(item, action="sent_to_adjudication", user=user, payload=payload, now=now, queue=queue)
    return PENDING


def consensus_vote(*, item: ExceptionItem, principal: Principal, action: str, now: datetime, **ballot):
    """Record ``principal``'s decision as a vote when the item's policy asks for more than one
    person (see the module's docstring for the answers). ``ballot`` is the resolution's ``output``,
    ``reason_code`` and ``note``. Call inside the resolving transaction."""
    if action not in (Resolution.APPROVE, Resolution.MODIFY, Resolution.REJECT):
        return None
    rule = approval_rule(item, edited_output=ballot["output"] if action == "modify" else None)
    if rule is not None:
        if principal.pk == item.agent_id:
            raise VoteRefused("the agent that raised an item never approves it", code="agent_cannot_approve")
        return _approve(item, principal, rule, action=action, now=now, **ballot)
    review = blind_review(item)
    if review is not None:
        return _judge(item, principal, review, action=action, now=now, **ballot)
    return None


def voted_on(*, item_id: int, user) -> bool:
    """Whether ``user`` already voted on the item, so cannot take it again."""
    return Vote.objects.filter(item_id=item_id, voter=user).exists()
