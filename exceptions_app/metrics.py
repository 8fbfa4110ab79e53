"""Prometheus exposition at /metrics, read from the database at scrape time, so the figures are
the same whichever gunicorn or Celery process served or did the work."""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from exceptions_app.capacity.report import capacity_report
from exceptions_app.models import (
    Delivery,
    DeliveryStatus,
    HistogramTotal,
    Queue,
    QueueSnapshot,
    Workflow,
)
from exceptions_app.pipeline import pipeline_state
from exceptions_app.services.snapshots import live_counts
from exceptions_app.services.tallies import LATENCY_BUCKETS
from exceptions_app.stats import counter_totals, latest_snapshots


def _histogram(name: str, documentation: str, total: HistogramTotal | None) -> HistogramMetricFamily:
    counts = (total.buckets if total and total.buckets else None) or [0] * len(LATENCY_BUCKETS)
    cumulative, running = [], 0
    for upper, count in zip(LATENCY_BUCKETS, counts, strict=True):
        running += count
        cumulative.append(("+Inf" if upper == float("inf") else str(float(upper)), running))
    return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=total.seconds_sum if total else 0.0)


def _capacity_gauges() -> list[GaugeMetricFamily]:
    """The capacity model at current volume, for the alerting rules in prometheus/alerts.yml. A figure
    the model cannot give yet (no handling times measured, no breach predicted) is left out; one
    that is unbounded is +Inf."""
    gauges = {
        "breach_eta_seconds": ("tollgate_capacity_breach_eta_seconds", "Seconds until an item is predicted to breach."),
        "utilisation": ("tollgate_capacity_utilisation", "Arrivals over the capacity of the operators working it."),
        "sla_attainment": ("tollgate_capacity_sla_attainment", "Predicted share of items resolved within the SLA."),
        "operators": ("tollgate_capacity_operators", "People who resolved or claimed the queue's items recently."),
        "operators_needed": ("tollgate_capacity_operators_needed", "Fewest operators for the target attainment."),
        "arrival_rate_per_hour": ("tollgate_capacity_arrival_rate_per_hour", "Measured arrivals per hour."),
    }
    families = {key: GaugeMetricFamily(name, text, labels=["queue"]) for key, (name, text) in gauges.items()}
    for forecast in capacity_report(now=timezone.now()).forecasts:
        for key, family in families.items():
            value = getattr(forecast, key)
            if value is not None:
                family.add_metric([forecast.queue], float(value))
    return list(families.values())


def _pipeline_metrics():
    """The outbox and Celery's queues (not review queues): is background work flowing?"""
    state = pipeline_state()
    pending = GaugeMetricFamily("tollgate_outbox_pending", "Deliveries in the outbox waiting to be sent.")
    pending.add_metric([], state.outbox_pending)
    oldest = GaugeMetricFamily(
        "tollgate_outbox_oldest_age_seconds", "Age of the oldest delivery waiting in the outbox (0 when none)."
    )
    oldest.add_metric([], state.outbox_oldest_age_seconds)
    consumers = GaugeMetricFamily(
        "tollgate_queue_consumers", "Celery workers seen consuming the Celery queue recently.", labels=["queue"]
    )
    messages = GaugeMetricFamily(
        "tollgate_queue_messages", "Messages waiting in the broker for the Celery queue.", labels=["queue"]
    )
    for queue in state.queues:
        consumers.add_metric([queue.name], queue.consumers)
        if queue.messages is not None:
            messages.add_metric([queue.name], queue.messages)
    yield from (pending, oldest, consumers, messages)


class TollgateCollector:
    def collect(self):
        queues = list(Queue.objects.all())
        counts = live_counts()
        latest = latest_snapshots(queues)
        depth = GaugeMetricFamily("tollgate_queue_depth", "Open items waiting in the queue.", labels=["queue"])
        claimed = GaugeMetricFamily("tollgate_queue_claimed", "Items claimed by an operator.", labels=["queue"])
        oldest = GaugeMetricFamily(
            "tollgate_queue_oldest_age_seconds",
            "Age of the oldest waiting item at the latest snapshot.",
            labels=["queue"],
        )
        p95 = GaugeMetricFamily(
            "tollgate_queue_p95_age_seconds", "95th percentile age of waiting items.", labels=["queue"]
        )
        for queue in queues:
            live = counts.get(queue.pk, {"open": 0, "claimed": 0})
            depth.add_metric([queue.name], live["open"])
            claimed.add_metric([queue.name], live["claimed"])
            snapshot: QueueSnapshot | None = latest.get(queue.pk)
            oldest.add_metric([queue.name], (snapshot.oldest_age_seconds or 0.0) if snapshot else 0.0)
            p95.add_metric([queue.name], (snapshot.p95_age_seconds or 0.0) if snapshot else 0.0)
        yield from (depth, claimed, oldest, p95)
        yield from _capacity_gauges()

        totals = counter_totals()
        decisions = CounterMetricFamily("tollgate_decisions", "Gate decisions.", labels=["workflow", "verdict"])
        for workflow, verdict, total in totals["decisions"]:
            decisions.add_metric([workflow, verdict], total)
        yield decisions

        resolutions = CounterMetricFamily("tollgate_resolutions", "Items resolved.", labels=["workflow", "outcome"])
        for workflow, outcome, total in totals["resolutions"]:
            resolutions.add_metric([workflow, outcome], total)
        yield resolutions

        deliveries = CounterMetricFamily("tollgate_deliveries", "Delivery attempts by outcome.", labels=["outcome"])
        for outcome, total in totals["deliveries"]:
            deliveries.add_metric([outcome], total)
        yield deliveries

        dead = GaugeMetricFamily("tollgate_dead_letters", "Deliveries in the dead letter, awaiting redelivery.")
        dead.add_metric([], Delivery.objects.filter(status=DeliveryStatus.DEAD).count())
        yield dead

        tripped = GaugeMetricFamily(
            "tollgate_workflow_tripped", "1 while the workflow's drift breaker holds every output.", labels=["workflow"]
        )
        for name, tripped_at in Workflow.objects.order_by("name").values_list("name", "tripped_at"):
            tripped.add_metric([name], 1 if tripped_at else 0)
        yield tripped

        yield from _pipeline_metrics()

        totals = {total.stage: total for total in HistogramTotal.objects.all()}
        yield _histogram("tollgate_waiting_seconds", "Queued to first claim.", totals.get("waiting"))
        yield _histogram("tollgate_handling_seconds", "First claim to resolution.", totals.get("handling"))
        yield _histogram("tollgate_delivery_seconds", "Resolution to delivered.", totals.get("delivery"))


def _allowed(request) -> bool:
    token = settings.TOLLGATE_METRICS_TOKEN
    if token:
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(offered.encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@require_GET
def metrics(request):
    if not _allowed(request):
        return HttpResponse(
            "metrics need the TOLLGATE_METRICS_TOKEN bearer token, or a loopback client\n",
            status=403,
            content_type="text/plain",
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TollgateCollector())
    return HttpResponse(generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8")
