"""Queues (the landing page) and the worker health card."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from exceptions_app import rules
from exceptions_app.errors import DomainError
from exceptions_app.models import WorkerHeartbeat, WorkerPing
from exceptions_app.selectors import queue_visible_get, queues_with_stats
from exceptions_app.services.items import item_claim_next
from exceptions_app.tasks.health import worker_ping as worker_ping_task
from review.access import person_for


def _worker_context() -> dict:
    heartbeat = WorkerHeartbeat.objects.filter(name="beat").first()
    return {
        "heartbeat": heartbeat,
        "heartbeat_age_seconds": (timezone.now() - heartbeat.last_seen_at).total_seconds() if heartbeat else None,
        "last_ping": WorkerPing.objects.first(),
    }


def _queues_context(request) -> dict:
    queues = queues_with_stats(principal=person_for(request))
    for queue in queues:
        queue["sla_stage"] = rules.sla_stage(queue["oldest_age_seconds"], queue["sla_seconds"])
    return {"queues": queues}


@require_GET
@login_required
def home(request):
    return TemplateResponse(request, "review/home.html", {**_queues_context(request), **_worker_context()})


@require_GET
@login_required
def queue_table(request):
    return TemplateResponse(request, "review/home.html#queue-table", _queues_context(request))


@require_POST
@login_required
def queue_next(request, name: str):
    """Claim the most urgent item of the queue and open it."""
    principal = person_for(request)
    try:
        item = item_claim_next(queue=queue_visible_get(principal=principal, name=name), principal=principal)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("review:home")
    if item is None:
        messages.info(request, f"Queue {name} is empty. Nice work.")
        return redirect("review:home")
    return redirect("review:item", item_id=item.pk)


@require_GET
@login_required
def worker_status(request):
    person_for(request)
    return TemplateResponse(request, "review/home.html#worker-status", _worker_context())


@require_POST
@login_required
def worker_ping(request):
    person_for(request)
    with transaction.atomic():
        ping = WorkerPing.objects.create()
        transaction.on_commit(lambda: worker_ping_task.delay(ping.pk))
    if request.htmx:
        return TemplateResponse(request, "review/home.html#worker-status", _worker_context())
    return redirect("review:home")
