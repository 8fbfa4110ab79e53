from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from exceptions_app.models import WorkerHeartbeat, WorkerPing
from exceptions_app.tasks.health import worker_ping as worker_ping_task


def _worker_context() -> dict:
    heartbeat = WorkerHeartbeat.objects.filter(name="beat").first()
    return {
        "heartbeat": heartbeat,
        "heartbeat_age_seconds": (timezone.now() - heartbeat.last_seen_at).total_seconds() if heartbeat else None,
        "last_ping": WorkerPing.objects.first(),
    }


@require_GET
@login_required
def home(request):
    return TemplateResponse(request, "review/home.html", _worker_context())


@require_GET
@login_required
def worker_status(request):
    return TemplateResponse(request, "review/home.html#worker-status", _worker_context())


@require_POST
@login_required
def worker_ping(request):
    with transaction.atomic():
        ping = WorkerPing.objects.create()
        transaction.on_commit(lambda: worker_ping_task.delay(ping.pk))
    if request.htmx:
        return TemplateResponse(request, "review/home.html#worker-status", _worker_context())
    return redirect("review:home")
