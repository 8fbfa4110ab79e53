"""Reads shared by pages and the API, with visibility rules applied."""

import re
from datetime import datetime

from django.db import connection
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from exceptions_app import rules
from exceptions_app.errors import NotFound
from exceptions_app.models import ExceptionItem, ItemStatus, Principal, Queue, Role, VotePurpose, Workflow
from exceptions_app.policy.consensus import approval_rule, blind_review
from exceptions_app.policy.document import WORKFLOW_NAME
from exceptions_app.services.consensus import vote_present


def workflow_published_get(name: str) -> Workflow | None:
    """The workflow of that name with a published policy, or None. A name no policy may have (a NUL byte
    would even fail PostgreSQL's comparison) is looked up nowhere."""
    if re.fullmatch(WORKFLOW_NAME, name) is None:
        return None
    return Workflow.objects.select_related("current_policy").filter(name=name, current_policy__isnull=False).first()


def workflow_published_or_not_found(name: str) -> Workflow:
    """The workflow of that name with a published policy; NotFound (the API's 404) when there is none."""
    workflow = workflow_published_get(name)
    if workflow is None:
        raise NotFound(f"unknown workflow {name!r}")
    return workflow


def items_visible_to(principal: Principal) -> QuerySet[ExceptionItem]:
    """Agents see their workflows' items; operators their teams' queues'; supervisors everything."""
    items = ExceptionItem.objects.select_related(
        "workflow", "queue", "policy_version", "resolved_by", "claimed_by", "agent__user"
    )
    if rules.principal_is_supervisor(principal):
        return items
    if principal.role == Role.AGENT:
        return items.filter(workflow__in=principal.workflows.all())
    # A subquery, not a join: no duplicate rows, so no DISTINCT and its sort over every visible item.
    return items.filter(queue__in=Queue.objects.filter(teams__members=principal))


def items_filtered(
    items: QuerySet[ExceptionItem],
    *,
    status: str = "",
    kind: str = "",
    queue: str = "",
    workflow: str = "",
    correlation_id: str = "",
    reason: str = "",
    raised_from: datetime | None = None,
    raised_before: datetime | None = None,
) -> QuerySet[ExceptionItem]:
    """The item filters of the API's list and the console's search; empty criteria do not filter."""
    if status:
        items = items.filter(status=status)
    if kind:
        items = items.filter(kind=kind)
    if queue:
        items = items.filter(queue__name=queue)
    if workflow:
        items = items.filter(workflow__name=workflow)
    if correlation_id:
        items = items.filter(correlation_id=correlation_id)
    if reason:
        if connection.vendor == "postgresql":
            items = items.filter(reasons__contains=[{"code": reason}])
        else:  # SQLite has no JSON containment; the stored text holds each reason as {"code": "...", ...}.
            items = items.filter(reasons__icontains=f'"code": "{reason}"')
    if raised_from is not None:
        items = items.filter(raised_at__gte=raised_from)
    if raised_before is not None:
        items = items.filter(raised_at__lt=raised_before)
    return items


# What the item's detail shows, in one query of six tables; the agent's name (captured state only) loads on
# demand, and visibility is a second, two-table query. Fewer tables is the point: with the visibility subquery
# and eight tables, PostgreSQL spent 5.5 ms planning each single-item read (0.2 ms executing it), the costliest
# statement under the soak's load; six tables plan in about 0.7 ms.
ITEM_DETAIL_RELATED = ("workflow", "queue", "policy_version", "claimed_by", "resolved_by")


def item_visible(principal: Principal, *, queue_id: int, workflow_id: int) -> bool:
    """Whether an item in this queue and workflow is in the principal's view (the rule of items_visible_to)."""
    if rules.principal_is_supervisor(principal):
        return True
    if principal.role == Role.AGENT:
        return principal.workflows.filter(pk=workflow_id).exists()
    return Queue.teams.through.objects.filter(queue_id=queue_id, team__members=principal).exists()


def item_visible_check(*, principal: Principal, item_id: int) -> None:
    """NotFound unless the item exists and is in the principal's view; reads two ids, not the item."""
    found = ExceptionItem.objects.filter(pk=item_id).values_list("queue_id", "workflow_id").first()
    if found is None or not item_visible(principal, queue_id=found[0], workflow_id=found[1]):
        raise NotFound(f"no exception item {item_id}")


def item_visible_get(*, principal: Principal, item_id: int) -> ExceptionItem:
    # Items outside the principal's view answer 404, not 403: their existence is not disclosed.
    item = ExceptionItem.objects.select_related(*ITEM_DETAIL_RELATED).filter(pk=item_id).first()
    if item is None or not item_visible(principal, queue_id=item.queue_id, workflow_id=item.workflow_id):
        raise NotFound(f"no exception item {item_id}")
    return item


def items_claimed_by(*, principal: Principal) -> QuerySet[ExceptionItem]:
    """The items this person holds a claim on, live or lapsed (a lapsed lease still blocks nobody but
    is still theirs until someone else claims it), soonest lease end first."""
    return (
        ExceptionItem.objects.filter(status=ItemStatus.CLAIMED, claimed_by_id=principal.user_id)
        .select_related("workflow", "queue")
        .only("id", "status", "priority", "claim_expires_at", "due_at", "workflow__name", "queue__name")
        .order_by("claim_expires_at", "id")
    )


def queues_visible_to(principal: Principal) -> QuerySet[Queue]:
    if rules.principal_is_supervisor(principal):
        return Queue.objects.all()
    if principal.role == Role.OPERATOR:
        return Queue.objects.filter(teams__members=principal).distinct()
    return Queue.objects.none()


def queue_visible_get(*, principal: Principal, name: str) -> Queue:
    queue = queues_visible_to(principal).filter(name=name).first()
    if queue is None:
        raise NotFound(f"no queue {name!r} among yours")
    return queue


def queues_with_stats(*, principal: Principal) -> list[dict]:
    """Each visible queue with its depth, claimed and snoozed counts and the age of its oldest open item.

    One grouped query over live items only (the partial indexes keep resolved items out of it)."""
    queues = list(
        queues_visible_to(principal).select_related("escalation_queue").prefetch_related("teams").order_by("name")
    )
    live = (
        ExceptionItem.objects.filter(
            queue__in=queues, status__in=[ItemStatus.OPEN, ItemStatus.CLAIMED, ItemStatus.SNOOZED]
        )
        .values("queue_id")
        .annotate(
            depth=Count("id", filter=Q(status=ItemStatus.OPEN)),
            claimed=Count("id", filter=Q(status=ItemStatus.CLAIMED)),
            snoozed=Count("id", filter=Q(status=ItemStatus.SNOOZED)),
            oldest=Min("queued_at", filter=Q(status=ItemStatus.OPEN)),
        )
    )
    stats = {row["queue_id"]: row for row in live}
    now = timezone.now()
    shown = []
    for queue in queues:
        row = stats.get(queue.pk, {})
        oldest = row.get("oldest")
        shown.append(
            {
                "name": queue.name,
                "sla_seconds": queue.sla_seconds,
                "escalation_queue": queue.escalation_queue.name if queue.escalation_queue else None,
                "teams": sorted(team.name for team in queue.teams.all()),
                "depth": row.get("depth", 0),
                "claimed": row.get("claimed", 0),
                "snoozed": row.get("snoozed", 0),
                "oldest_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
            }
        )
    return shown


def item_consensus(item: ExceptionItem) -> dict | None:
    """Where an item that needs several people stands: the approvals given so far (with who and
    when), or the blind judgements, counted but not shown until they are all in (the adjudicator
    sees them; the judges see each other's only then) or the item has closed. None for an item one
    person decides."""
    document = item.policy_version.document
    if "approvals" not in document and "blind_review" not in document:
        return None
    rule = approval_rule(item)
    votes = list(item.votes.select_related("voter", "team").order_by("purpose", "seat"))
    approvals = [vote for vote in votes if vote.purpose == VotePurpose.APPROVAL]
    if rule is not None or approvals:
        given = [vote for vote in approvals if vote.resolution != "reject"]
        required = rule.required if rule else len(given)
        return {
            "kind": "approvals",
            "required": required,
            "distinct": rule.distinct if rule else "people",
            "approvals": len(given),
            "waiting": not item.is_terminal and 0 < len(given) < required,
            "votes": [vote_present(vote) for vote in approvals],
            "revealed": True,
        }
    review = blind_review(item)
    judgements = [vote for vote in votes if vote.purpose == VotePurpose.JUDGEMENT]
    if review is None and not judgements:
        return None
    required = review.judgements if review else len(judgements)
    revealed = item.is_terminal or len(judgements) >= required
    return {
        "kind": "blind_review",
        "required": required,
        "judgements": len(judgements),
        "adjudication": not item.is_terminal and len(judgements) >= required,
        "votes": [vote_present(vote) for vote in judgements] if revealed else [],
        "revealed": revealed,
    }
