"""Reads shared by pages and the API, with visibility rules applied."""

from django.db.models import QuerySet

from exceptions_app.errors import NotFound
from exceptions_app.models import ExceptionItem, Principal, Role


def items_visible_to(principal: Principal) -> QuerySet[ExceptionItem]:
    """Agents see their workflows' items; operators their teams' queues'; supervisors everything."""
    items = ExceptionItem.objects.select_related("workflow", "queue", "policy_version", "resolved_by")
    if principal.role == Role.SUPERVISOR:
        return items
    if principal.role == Role.AGENT:
        return items.filter(workflow__in=principal.workflows.all())
    return items.filter(queue__teams__in=principal.teams.all()).distinct()


def item_visible_get(*, principal: Principal, item_id: int) -> ExceptionItem:
    # Items outside the principal's view answer 404, not 403: their existence is not disclosed.
    item = items_visible_to(principal).filter(pk=item_id).first()
    if item is None:
        raise NotFound(f"no exception item {item_id}")
    return item
