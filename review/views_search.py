"""Search and filters over the items an operator may see, and bulk approve or reject."""

from datetime import datetime, time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from exceptions_app.errors import DomainError
from exceptions_app.selectors import items_visible_to
from exceptions_app.services.bulk import items_resolve_bulk
from review import forms
from review.access import person_for

PAGE_SIZE = 50


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _with_reason(items, code: str):
    if connection.vendor == "postgresql":
        return items.filter(reasons__contains=[{"code": code}])
    # SQLite has no JSON containment; the stored text holds each reason as {"code": "...", ...}.
    return items.filter(reasons__icontains=f'"code": "{code}"')


@require_GET
@login_required
def search(request):
    principal = person_for(request)
    form = forms.SearchForm(request.GET or None)
    # Newest first: the database walks the primary key backwards and stops at a page, whatever the
    # filters; urgency order is what Next and the queue list are for.
    items = items_visible_to(principal).order_by("-id")
    if form.is_valid():
        criteria = form.cleaned_data
        if criteria["workflow"]:
            items = items.filter(workflow__name=criteria["workflow"])
        if criteria["queue"]:
            items = items.filter(queue__name=criteria["queue"])
        if criteria["status"]:
            items = items.filter(status=criteria["status"])
        if criteria["reason"]:
            items = _with_reason(items, criteria["reason"])
        if criteria["correlation_id"]:
            items = items.filter(correlation_id=criteria["correlation_id"])
        if criteria["raised_from"]:
            items = items.filter(raised_at__gte=_day_start(criteria["raised_from"]))
        if criteria["raised_to"]:
            items = items.filter(raised_at__lt=_day_start(criteria["raised_to"]) + timezone.timedelta(days=1))
    else:
        items = items.filter(status="open") if not request.GET else items.none()
    page = list(items[: PAGE_SIZE + 1])
    context = {
        "form": form,
        "items": page[:PAGE_SIZE],
        "more": len(page) > PAGE_SIZE,
        "bulk_form": forms.BulkForm(),
        "query": request.GET.urlencode(),
    }
    template = (
        "review/search.html#results" if request.htmx and request.htmx.target == "results" else "review/search.html"
    )
    return TemplateResponse(request, template, context)


@require_POST
@login_required
def bulk(request):
    principal = person_for(request)
    ids = [int(value) for value in request.POST.getlist("items") if value.isdigit()]
    form = forms.BulkForm(request.POST, item_ids=ids)
    back = redirect(f"{reverse('review:search')}?{request.POST.get('query', '')}")
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(problems)}" for field, problems in form.errors.items())
        messages.error(request, f"Nothing changed: {errors}")
        return back
    visible = set(items_visible_to(principal).filter(pk__in=form.cleaned_data["items"]).values_list("pk", flat=True))
    try:
        resolved, failed = items_resolve_bulk(
            item_ids=sorted(visible),
            principal=principal,
            action=form.cleaned_data["action"],
            reason_code=form.cleaned_data["reason_code"],
        )
    except DomainError as error:
        messages.error(request, error.message)
        return back
    verb = "approved" if form.cleaned_data["action"] == "approve" else "rejected"
    messages.success(request, f"{len(resolved)} items {verb}.")
    for item_id, reason in failed.items():
        messages.error(request, f"Item {item_id}: {reason}")
    return back
