"""The stored priority of an item: higher is more urgent. Computed at intake, raised by the SLA job."""

import math
from decimal import Decimal

SEVERITY_POINTS = {"low": 100, "medium": 200, "high": 300, "critical": 400}
DEFAULT_WEIGHTS = {"severity": 1.0, "value_at_risk": 1.0, "rules": 1.0}


def priority_compute(
    *, severity: str, value_at_risk: Decimal | float | None, rules_fired: int, weights: dict | None = None
) -> int:
    """Severity points, plus 20 per decade of value at risk ($1M adds 120), plus 5 per fired rule;
    each term scaled by the queue's optional weight."""
    weight = {**DEFAULT_WEIGHTS, **(weights or {})}
    value = float(value_at_risk) if value_at_risk is not None and value_at_risk > 0 else 0.0
    score = (
        weight["severity"] * SEVERITY_POINTS[severity]
        + weight["value_at_risk"] * 20 * math.log10(1 + value)
        + weight["rules"] * 5 * rules_fired
    )
    return round(score)
