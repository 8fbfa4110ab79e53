"""Agreement figures from blind judgements: per workflow (how far the judges agree with each other)
and per operator (how far each one agrees with the final decision), over the items closed in a
window. Only blind judgements count: N-of-M approvals are not independent (the second approver
sees the first), so they would flatter the figures."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from exceptions_app.accountability.agreement import (
    bootstrap_interval,
    cohen_kappa,
    fleiss_kappa,
    percent_agreement,
    wilson_interval,
)
from exceptions_app.models import ItemStatus, Vote, VotePurpose

AGREEMENT_WINDOW = timedelta(days=90)


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _interval(bounds: tuple[float, float] | None) -> list[float] | None:
    return [round(bounds[0], 4), round(bounds[1], 4)] if bounds is not None else None


def _judgements(since: datetime) -> list[tuple]:
    """(item, workflow, judge, judgement, final decision) of every blind judgement of an item resolved since."""
    return list(
        Vote.objects.filter(
            purpose=VotePurpose.JUDGEMENT, item__status=ItemStatus.RESOLVED, item__resolved_at__gte=since
        ).values_list("item_id", "item__workflow__name", "voter__username", "resolution", "item__resolution")
    )


def _workflow_row(workflow: str, items: dict[int, Counter]) -> dict:
    counters = list(items.values())
    return {
        "scope": "workflow",
        "workflow": workflow,
        "operator": None,
        "items": len(counters),
        "judgements": sum(sum(counter.values()) for counter in counters),
        "unanimous_items": sum(len(counter) == 1 for counter in counters),
        "percent_agreement": _rounded(percent_agreement(counters)),
        "percent_agreement_interval": _interval(bootstrap_interval(counters, percent_agreement)),
        "kappa": _rounded(fleiss_kappa(counters)),
        "kappa_interval": _interval(bootstrap_interval(counters, fleiss_kappa)),
        "kappa_kind": "fleiss",
    }


def _operator_row(workflow: str, operator: str, pairs: list[tuple[str, str]]) -> dict:
    agreeing = sum(mine == final for mine, final in pairs)
    return {
        "scope": "operator",
        "workflow": workflow,
        "operator": operator,
        "items": len(pairs),
        "judgements": len(pairs),
        "unanimous_items": None,
        "percent_agreement": _rounded(agreeing / len(pairs)),
        "percent_agreement_interval": _interval(wilson_interval(agreeing, len(pairs))),
        "kappa": _rounded(cohen_kappa(pairs)),
        "kappa_interval": _interval(bootstrap_interval(pairs, cohen_kappa)),
        "kappa_kind": "cohen",
    }


def agreement_rows(*, since: datetime) -> list[dict]:
    """Per workflow, then per operator of it (against the final decision), by name."""
    items: dict[str, dict[int, Counter]] = defaultdict(lambda: defaultdict(Counter))
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for item_id, workflow, judge, judgement, final in _judgements(since):
        items[workflow][item_id][judgement] += 1
        pairs[(workflow, judge)].append((judgement, final))
    rows = []
    for workflow in sorted(items):
        rows.append(_workflow_row(workflow, items[workflow]))
        rows += [
            _operator_row(workflow, judge, pairs[(name, judge)]) for name, judge in sorted(pairs) if name == workflow
        ]
    return rows
