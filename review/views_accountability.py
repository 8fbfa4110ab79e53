"""A workflow's accountability page: unattended error, bands, the reliability and trade-off curves,
the recommended threshold (published only by a supervisor's click) and the drift breaker."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from exceptions_app.accountability.report import accountability_report
from exceptions_app.errors import DomainError
from exceptions_app.models import Workflow
from exceptions_app.selectors import workflow_published_get
from exceptions_app.services.judgements import breaker_reset, threshold_publish
from review import charts
from review.access import supervisor_for

WINDOWS = {"1": timedelta(days=1), "7": timedelta(days=7), "30": timedelta(days=30)}


def _supervisor(request):
    # The one supervisor rule, and a 403 that says why and what to do.
    return supervisor_for(request, page="The accountability pages")


def _workflow(name: str) -> Workflow:
    workflow = workflow_published_get(name)
    if workflow is None:
        raise Http404(f"no workflow {name!r}")
    return workflow


@require_GET
@login_required
def accountability(request, name: str):
    _supervisor(request)
    workflow = _workflow(name)
    days = request.GET.get("days", "7")
    window = WINDOWS.get(days, WINDOWS["7"])
    now = timezone.now()
    report = accountability_report(workflow=workflow, since=now - window, until=now)
    recommended = report.recommended["threshold"] if report.recommended else None
    context = {
        "workflow": workflow,
        "report": report,
        "answer": report.answer,
        "days": days if days in WINDOWS else "7",
        "windows": list(WINDOWS),
        "reliability_chart": charts.reliability(report.reliability),
        "tradeoff_chart": charts.tradeoff(
            report.tradeoff, target=report.target, recommended=recommended, current=report.auto_approve
        ),
    }
    return TemplateResponse(request, "review/accountability.html", context)


@require_POST
@login_required
def accountability_reset_breaker(request, name: str):
    principal = _supervisor(request)
    try:
        breaker_reset(workflow_name=name, principal=principal, note=request.POST.get("note", "")[:2000])
        messages.success(request, f"The breaker of {name} is reset: outputs pass the gate by policy again.")
    except DomainError as error:
        messages.error(request, f"Nothing changed: {error.message}.")
    return redirect("review:accountability", name=name)


@require_POST
@login_required
def accountability_publish_threshold(request, name: str):
    principal = _supervisor(request)
    try:
        value = float(request.POST.get("auto_approve", ""))
    except ValueError:
        messages.error(request, "Nothing changed: auto_approve: a number between 0 and 1 is needed.")
        return redirect("review:accountability", name=name)
    try:
        version = threshold_publish(workflow_name=name, principal=principal, auto_approve=value)
        messages.success(request, f"Published {name} v{version.version} with auto_approve {value:.2f}.")
    except DomainError as error:
        messages.error(request, f"Nothing changed: {error.message}.")
    return redirect("review:accountability", name=name)
