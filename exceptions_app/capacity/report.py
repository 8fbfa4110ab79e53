"""The capacity report that the API, the dashboard panel and /metrics share (a selector): measured
inputs, the what-if forecast of every queue, riskiest first, and the headline sentence."""

import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from exceptions_app.capacity.forecast import QueueForecast, breaking_first, headline, queue_forecast
from exceptions_app.capacity.inputs import capacity_inputs
from exceptions_app.models import QueueSnapshot

UNBOUNDED = "unbounded"
DASHBOARD_SCALES = [1.0, 1.5, 2.0, 3.0, 5.0]  # the dashboard's volume choices, computed after each tick


@dataclass(frozen=True)
class CapacityReport:
    scale: float
    target: float
    window_seconds: int
    headline: str
    breaks_first: QueueForecast | None
    forecasts: list[QueueForecast]


def target_attainment() -> float:
    return settings.TOLLGATE_CAPACITY_TARGET_PERCENT / 100.0


def _risk_order(forecast: QueueForecast) -> tuple:
    attainment = forecast.sla_attainment
    eta = forecast.breach_eta_seconds
    return (attainment is None, attainment if attainment is not None else 1.0, eta if eta is not None else math.inf)


def _compute(*, now: datetime, scale: float, operators: dict[str, int]) -> CapacityReport:
    target = target_attainment()
    forecasts = [
        queue_forecast(inputs, scale=scale, operators=operators.get(inputs.queue), target=target)
        for inputs in capacity_inputs(now=now)
    ]
    forecasts.sort(key=_risk_order)
    return CapacityReport(
        scale=scale,
        target=target,
        window_seconds=settings.TOLLGATE_CAPACITY_WINDOW_SECONDS,
        headline=headline(forecasts, scale=scale, target=target),
        breaks_first=breaking_first(forecasts, target),
        forecasts=forecasts,
    )


def capacity_report(*, now: datetime, scale: float = 1.0, operators: dict[str, int] | None = None) -> CapacityReport:
    """Every queue's forecast with arrivals times ``scale`` and, for the queues named in
    ``operators``, that many operators instead of the measured number.

    The inputs change only when the snapshot job adds a tick, so a report is cached under the newest
    snapshot (id and time, as the dashboard's charts are) and the what-if; the job warms the
    dashboard's volumes right after each tick, so the simulations run in the worker, not in a request."""
    operators = operators or {}
    newest = QueueSnapshot.objects.order_by("-id").values_list("id", "taken_at").first()
    if newest is None:
        return _compute(now=now, scale=scale, operators=operators)
    what_if = ",".join(f"{name}:{count}" for name, count in sorted(operators.items()))
    key = (
        f"tollgate:capacity:{newest[0]}:{newest[1].timestamp()}:{scale!r}:{what_if}:"
        f"{settings.TOLLGATE_CAPACITY_WINDOW_SECONDS}:{settings.TOLLGATE_CAPACITY_TARGET_PERCENT}"
    )
    report = cache.get(key)
    if report is None:
        report = _compute(now=now, scale=scale, operators=operators)
        cache.set(key, report, timeout=max(60, 2 * settings.TOLLGATE_SNAPSHOT_SECONDS))
    return report


def capacity_reports_warm(*, now: datetime | None = None) -> None:
    """Compute (and so cache) the dashboard's volumes right after a snapshot tick."""
    for scale in DASHBOARD_SCALES:
        capacity_report(now=now or timezone.now(), scale=scale)


def _number(value: float | None, digits: int) -> float | str | None:
    if value is None:
        return None
    if math.isinf(value):
        return UNBOUNDED
    return round(value, digits)


def forecast_json(forecast: QueueForecast) -> dict:
    """One queue as the API answers it: the issue's fields, and ``model`` naming each one's source."""
    needed = forecast.operators_needed
    return {
        "queue": forecast.queue,
        "arrival_rate_per_hour": round(forecast.arrival_rate_per_hour, 2),
        "service_rate_per_operator_per_hour": _number(forecast.service_rate_per_operator_per_hour, 2),
        "operators": forecast.operators,
        "utilisation": _number(forecast.utilisation, 4),
        "predicted_wait_seconds": {
            "mean": _number(forecast.mean_wait_seconds, 1),
            "p95": _number(forecast.p95_wait_seconds, 1),
        },
        "sla_attainment": _number(forecast.sla_attainment, 4),
        "breach_eta_seconds": _number(forecast.breach_eta_seconds, 1),
        "drain_eta_seconds": _number(forecast.drain_eta_seconds, 1),
        "operators_needed": UNBOUNDED if needed == math.inf else (None if needed is None else int(needed)),
        "model": forecast.model,
    }


def report_json(report: CapacityReport) -> dict:
    return {
        "scale": report.scale,
        "target_attainment": report.target,
        "window_seconds": report.window_seconds,
        "headline": report.headline,
        "breaks_first": report.breaks_first.queue if report.breaks_first else None,
        "queues": [forecast_json(forecast) for forecast in report.forecasts],
    }
