"""The supervisors' dashboard: live queue table, charts, rates, latency, operators, dead letters."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import replace_url

from exceptions_app import stats
from exceptions_app.accountability.agreement_report import AGREEMENT_WINDOW, agreement_rows
from exceptions_app.models import Delivery, DeliveryStatus, Queue, Workflow
from exceptions_app.pipeline import pipeline_state
from exceptions_app.services.deliveries import deliveries_redeliver
from exceptions_app.services.snapshots import AGE_BUCKETS, live_state
from review import charts
from review.access import supervisor_for
from review.capacity_panel import capacity_panel

WINDOW = stats.DASHBOARD_WINDOW
AGE_LABELS = ["≤1m", "≤5m", "≤15m", "≤30m", "≤1h", "≤2h", "≤4h", "≤12h", "≤24h", ">24h"]


def _supervisor(request):
    return supervisor_for(request, page="The dashboard")


def _tables(now) -> dict:
    since = now - WINDOW
    live = live_state()  # one read of the live items for both tables
    return {
        "queues": stats.queue_table(queues=Queue.objects.all(), now=now, live=live),
        "workflows": stats.workflow_rates(since=since),
        "latency": stats.latency_split(since=since),
        "operators": stats.operator_table(since=since, live=live),
    }


def _live(now) -> dict:
    """The live part: the tables, and what the background pipeline lacks (no consumer, stuck work)."""
    return {**_tables(now), "pipeline": pipeline_state(now=now)}


def _charts(now) -> dict:
    """Chart data: lines of depth and p95 age per queue, the latest age histogram, throughput."""
    since = now - WINDOW
    names = dict(Queue.objects.values_list("id", "name"))
    rows = stats.chart_rows(since)
    queue_charts = []
    for queue_id, points in sorted(rows["series"].items(), key=lambda entry: names.get(entry[0], "")):
        shown = [point for point in points if point[0] >= since]  # cached a tick ago: trim to the window
        queue_charts.append(
            {
                "queue": names.get(queue_id, "?"),
                "depth": charts.polyline([(point[0], point[1]) for point in shown], start=since, end=now),
                "p95": charts.polyline([(point[0], point[2]) for point in shown], start=since, end=now),
            }
        )
    latest_ages = [0] * len(AGE_BUCKETS)
    for snapshot in stats.latest_snapshots(list(names)).values():
        for index, count in enumerate(snapshot.age_buckets or []):
            latest_ages[index] += count
    return {
        "queue_charts": queue_charts,
        "age_histogram": charts.bars(AGE_LABELS, latest_ages),
        "throughput": charts.hourly_throughput(rows["hourly"], now=now),
    }


def _dashboard_page(request, *, status: int = 200):
    now = timezone.now()
    dead = Delivery.objects.filter(status=DeliveryStatus.DEAD).select_related("workflow").order_by("-dead_at")[:100]
    capacity, capacity_status = capacity_panel(request.GET)
    accountability = Workflow.objects.filter(current_policy__isnull=False).order_by("name").values("name", "tripped_at")
    context = {
        **_live(now),
        **_charts(now),
        **capacity,
        "dead_letters": dead,
        "now": now,
        "accountability": accountability,
        "agreement": agreement_rows(since=now - AGREEMENT_WINDOW),
    }
    return TemplateResponse(request, "review/dashboard.html", context, status=max(status, capacity_status))


@require_GET
@login_required
def dashboard(request):
    _supervisor(request)
    return _dashboard_page(request)


@require_GET
@login_required
def dashboard_live(request):
    """The live part (queue table, operators), polled by the page."""
    _supervisor(request)
    return TemplateResponse(request, "review/dashboard.html#live", _live(timezone.now()))


def _dead_letter_rows() -> list[dict]:
    """Every dead letter, newest first (the page shows the latest 100)."""
    dead = Delivery.objects.filter(status=DeliveryStatus.DEAD).order_by("-dead_at", "-id")
    return [
        {
            "delivery": row["public_id"],
            "workflow": row["workflow__name"],
            "item": row["item_id"] or "",
            "kind": row["kind"],
            "target": row["target"] or row["target_queue"],
            "attempts": row["attempts"],
            "dead_at": row["dead_at"].isoformat() if row["dead_at"] else "",
            "last_error": row["last_error"],
        }
        for row in dead.values(
            "public_id",
            "workflow__name",
            "item_id",
            "kind",
            "target",
            "target_queue",
            "attempts",
            "dead_at",
            "last_error",
        ).iterator()
    ]


@require_GET
@login_required
def dashboard_capacity(request):
    """The capacity panel at another volume (``?scale=``), swapped in by the panel's form."""
    _supervisor(request)
    context, status = capacity_panel(request.GET)
    return TemplateResponse(request, "review/dashboard.html#capacity", context, status=status)


@require_GET
@login_required
def dashboard_export(request, table: str):
    _supervisor(request)
    rows = _dead_letter_rows() if table == "dead-letters" else _tables(timezone.now()).get(table)
    if rows is None:
        raise Http404(f"no table {table!r}")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="tollgate-{table}.csv"'
    writer = csv.DictWriter(response, fieldnames=list(rows[0]) if rows else ["empty"])
    writer.writeheader()
    for row in rows:
        # Cells that start like a formula are quoted so a spreadsheet never evaluates them.
        writer.writerow(
            {key: f"'{value}" if str(value).startswith(("=", "+", "-", "@")) else value for key, value in row.items()}
        )
    return response


@require_POST
@login_required
def dead_letters_redeliver(request):
    principal = _supervisor(request)
    ids = [value for value in request.POST.getlist("deliveries") if value.startswith("msg_")][:1000]
    if not ids:
        messages.error(request, "Nothing changed: deliveries: select at least one dead letter to redeliver.")
        response = _dashboard_page(request, status=400)
        return replace_url(response, reverse("review:dashboard")) if request.htmx else response
    count = deliveries_redeliver(delivery_ids=ids, actor=principal.user)
    messages.success(request, f"Put {count} deliver{pluralize(count, 'y,ies')} back in the outbox to send again.")
    return redirect("review:dashboard")
