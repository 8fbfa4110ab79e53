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
from exceptions_app.selectors import items_claimed_by, queue_visible_get, queues_with_stats
from exceptions_app.services.items import item_claim_next
from exceptions_app.tasks.health import worker_ping as worker_ping_task
from review.access import login_required_home, person_for


def _worker_context() -> dict:
    heartbeat = WorkerHeartbeat.objects.filter(name="beat").first()
    return {
        "heartbeat": heartbeat,
        "heartbeat_age_seconds": (timezone.now() - heartbeat.last_seen_at).total_seconds() if heartbeat else None,
        "last_ping": WorkerPing.objects.first(),
    }


def _queues_context(request) -> dict:
    principal = person_for(request)
    queues = queues_with_stats(principal=principal)
    for queue in queues:
        queue["sla_stage"] = rules.sla_stage(queue["oldest_age_seconds"], queue["sla_seconds"])
    return {"queues": queues, "my_claims": list(items_claimed_by(principal=principal)), "claims_back": "/"}


@require_GET
@login_required
def home(request):
    return TemplateResponse(request, "review/home.html", {**_queues_context(request), **_worker_context()})


@require_GET
@login_required
def queue_table(request):
    return TemplateResponse(request, "review/home.html#queue-table", _queues_context(request))


@require_POST
@login_required_home
def queue_next(request, name: str):
    """Open the item the operator already holds in this queue, or else claim its most urgent one.
    Taking another while one is held would leave the first leased and out of sight."""
    principal = person_for(request)
    try:
        queue = queue_visible_get(principal=principal, name=name)
        held = items_claimed_by(principal=principal).filter(queue=queue).first()
        if held is not None:
            messages.info(request, f"You already hold item {held.pk} in the {name} queue: here it is.")
            return redirect("review:item", item_id=held.pk)
        item = item_claim_next(queue=queue, principal=principal)
    except DomainError as error:
        messages.error(request, f"{error.message[:1].upper()}{error.message[1:]}.")
        return redirect("review:home")
    if item is None:
        messages.info(request, f"The {name} queue is empty: nothing was claimed.")
        return redirect("review:home")
    return redirect("review:item", item_id=item.pk)


@require_GET
@login_required
def worker_status(request):
    person_for(request)
    return TemplateResponse(request, "review/home.html#worker-status", _worker_context())


@require_POST
@login_required_home
def worker_ping(request):
    person_for(request)
    with transaction.atomic():
        ping = WorkerPing.objects.create()
        transaction.on_commit(lambda: worker_ping_task.delay(ping.pk))
    if request.htmx:
        return TemplateResponse(request, "review/home.html#worker-status", _worker_context())
    return redirect("review:home")
