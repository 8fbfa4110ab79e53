from django.db import transaction

from exceptions_app.errors import DomainError, InvalidInput
from exceptions_app.models import ExceptionItem, ItemStatus, Principal
from exceptions_app.policy import review
from exceptions_app.services.items import item_claim, item_resolve

MAX_BULK = 200


def _primary_reason(item: ExceptionItem) -> str:
    return item.reasons[0]["code"] if item.reasons else ""


def items_bulk_check(*, item_ids: list[int], action: str) -> list[ExceptionItem]:
    """The items of a bulk action, or InvalidInput saying why they cannot go together; asked
    before the operator confirms and again when the action runs."""
    if action not in ("approve", "reject"):
        raise InvalidInput("bulk actions are approve and reject", fields=[{"path": "action", "message": "unknown"}])
    if not item_ids or len(item_ids) > MAX_BULK:
        raise InvalidInput(f"select 1 to {MAX_BULK} items", fields=[{"path": "items", "message": "count"}])
    items = list(ExceptionItem.objects.filter(pk__in=item_ids).select_related("policy_version"))
    if len({(item.workflow_id, _primary_reason(item)) for item in items}) > 1:
        raise InvalidInput(
            "bulk actions need items of one workflow held for one reason",
            fields=[{"path": "items", "message": "mixed workflows or reasons"}],
        )
    attested = [
        item.pk
        for item in items
        if action == "approve" and review.needs_typed_attestation(item.policy_version.document, reasons=item.reasons)
    ]
    if attested:
        raise InvalidInput(
            f"approving item {attested[0]} takes a typed attestation: approve such items one by one",
            fields=[{"path": "items", "message": "needs a typed attestation"}],
        )
    return items


def items_resolve_bulk(
    *, item_ids: list[int], principal: Principal, action: str, reason_code: str = ""
) -> tuple[list[int], dict[int, str]]:
    """Approve or reject several similar items (one workflow, one reason) in one action. Each is
    claimed and resolved in its own transaction with its own audit events, so one that another
    operator holds fails alone. Returns the resolved ids and the failures by id."""
    items = items_bulk_check(item_ids=item_ids, action=action)
    resolved, failed = [], {}
    for item in sorted(items, key=lambda row: row.pk):
        try:
            with transaction.atomic():
                if item.status != ItemStatus.CLAIMED or item.claimed_by_id != principal.user_id:
                    item_claim(item_id=item.pk, principal=principal)
                item_resolve(
                    item_id=item.pk, principal=principal, action=action, reason_code=reason_code, note="bulk action"
                )
            resolved.append(item.pk)
        except DomainError as error:
            failed[item.pk] = error.message
    return resolved, failed
