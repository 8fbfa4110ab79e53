"""The capacity panel of the supervisors' dashboard: the headline, and per queue what the model
predicts at the chosen volume (``?scale=``), swapped in place by htmx when the scale changes."""

import math
import re

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from exceptions_app.api.errors import flatten_field_errors
from exceptions_app.capacity.forecast import QueueForecast, duration_words
from exceptions_app.capacity.query import CapacityQuery
from exceptions_app.capacity.report import DASHBOARD_SCALES, capacity_report
from review.templatetags.console import duration


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return "unbounded" if math.isinf(value) else duration(value)


def _share(value: float | None) -> str:
    if value is None:
        return "—"
    return "unbounded" if math.isinf(value) else f"{value:.0%}"


def _row(forecast: QueueForecast) -> dict:
    needed = forecast.operators_needed
    return {
        "queue": forecast.queue,
        "arrivals": f"{forecast.arrival_rate_per_hour:.1f}",
        "service": "—"
        if forecast.service_rate_per_operator_per_hour is None
        else f"{forecast.service_rate_per_operator_per_hour:.1f}",
        "operators": forecast.operators,
        "needed": "—" if needed is None else ("none enough" if math.isinf(needed) else f"{needed:.0f}"),
        "short": needed is not None and needed > forecast.operators,
        "utilisation": _share(forecast.utilisation),
        "wait_mean": _seconds(forecast.mean_wait_seconds),
        "wait_p95": _seconds(forecast.p95_wait_seconds),
        "attainment": _share(forecast.sla_attainment),
        "sla": duration_words(forecast.sla_seconds),
        "breach": _seconds(forecast.breach_eta_seconds),
        "drain": _seconds(forecast.drain_eta_seconds),
        "backlog": forecast.backlog,
        "model": forecast.model["sla_attainment"],
    }


def _headline_html(text: str) -> SafeString:
    """Escape the sentence, then show its `queue` names as code."""
    return mark_safe(re.sub(r"`([^`<>&]*)`", r"<code>\1</code>", str(escape(text))))  # noqa: S308 - escaped first


def capacity_panel(query_params) -> tuple[dict, int]:
    """The panel's context and status: 400 with the reason when ``scale`` is not a number we take."""
    query = CapacityQuery(data={"scale": query_params.get("scale", "1")})
    if not query.is_valid():
        reasons = "; ".join(f"{field['path']}: {field['message']}" for field in flatten_field_errors(query.errors))
        return {"capacity_error": reasons, "scales": DASHBOARD_SCALES, "scale": 1.0}, 400
    scale = query.validated_data["scale"]
    report = capacity_report(now=timezone.now(), scale=scale)
    context = {
        "scale": scale,
        "scales": sorted({*DASHBOARD_SCALES, scale}),
        "target": report.target,
        "headline": _headline_html(report.headline),
        "capacity_rows": [_row(forecast) for forecast in report.forecasts],
        "window_minutes": report.window_seconds // 60,
    }
    return context, 200
