"""Search and filters over the items an operator may see, and bulk approve or reject."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import QueryDict
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import replace_url

from exceptions_app.errors import DomainError
from exceptions_app.selectors import items_filtered, items_visible_to
from exceptions_app.services.bulk import items_bulk_check, items_resolve_bulk
from review import forms
from review.access import login_required_home, person_for

PAGE_SIZE = 50


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _results_page(request, params: QueryDict, *, status: int = 200, confirmation: dict | None = None):
    principal = person_for(request)
    form = forms.SearchForm(params or None)
    # Newest first: the database walks the primary key backwards and stops at a page, whatever the
    # filters; urgency order is what Next and the queue list are for.
    items = items_visible_to(principal).order_by("-id")
    if form.is_valid():
        criteria = form.cleaned_data
        items = items_filtered(
            items,
            status=criteria["status"],
            kind=criteria["kind"],
            queue=criteria["queue"],
            workflow=criteria["workflow"],
            correlation_id=criteria["correlation_id"],
            reason=criteria["reason"],
            raised_from=_day_start(criteria["raised_from"]) if criteria["raised_from"] else None,
            # Up to and including the day named.
            raised_before=_day_start(criteria["raised_to"]) + timedelta(days=1) if criteria["raised_to"] else None,
        )
    else:
        items = items.filter(status="open") if not params else items.none()
    page = list(items[: PAGE_SIZE + 1])
    context = {
        "form": form,
        "items": page[:PAGE_SIZE],
        "more": len(page) > PAGE_SIZE,
        "bulk_form": forms.BulkForm(),
        "query": params.urlencode(),
        "confirmation": confirmation,
    }
    template = (
        "review/search.html#results" if request.htmx and request.htmx.target == "results" else "review/search.html"
    )
    return TemplateResponse(request, template, context, status=status)


@require_GET
@login_required
def search(request):
    return _results_page(request, request.GET)


def _bulk_refused(request, message: str, *, status: int):
    """The search the operator came from again, with the reason and the status; nothing was written."""
    messages.error(request, message)
    query = request.POST.get("query", "")
    response = _results_page(request, QueryDict(query), status=status)
    return replace_url(response, f"{reverse('review:search')}?{query}") if request.htmx else response


def _bulk_confirmation(request, form, items):
    """The selection again, to confirm: how many items and how much value is at risk."""
    values = [item.value_at_risk for item in items]
    known = [value for value in values if value is not None]
    confirmation = {
        "action": form.cleaned_data["action"],
        "count": len(values),
        "total_value": sum(known, Decimal(0)),
        "without_value": len(values) - len(known),
        "items": [item.pk for item in items],
        "reason_code": form.cleaned_data["reason_code"],
    }
    response = _results_page(request, QueryDict(request.POST.get("query", "")), confirmation=confirmation)
    return replace_url(response, f"{reverse('review:search')}?{request.POST.get('query', '')}")


@require_POST
@login_required_home
def bulk(request):
    principal = person_for(request)
    # isascii: "²" is a digit to isdigit() but not to int().
    ids = [int(value) for value in request.POST.getlist("items") if value.isascii() and value.isdigit()]
    form = forms.BulkForm(request.POST, item_ids=ids)
    if not form.is_valid():
        return _bulk_refused(request, f"Nothing changed: {forms.errors_in_words(form)}", status=400)
    visible = set(items_visible_to(principal).filter(pk__in=form.cleaned_data["items"]).values_list("pk", flat=True))
    if visible and not form.cleaned_data["confirmed"]:
        try:
            items = items_bulk_check(item_ids=sorted(visible), action=form.cleaned_data["action"])
        except DomainError as error:
            return _bulk_refused(request, f"Nothing changed: {error.message}.", status=error.status_code)
        return _bulk_confirmation(request, form, items)
    try:
        resolved, failed = items_resolve_bulk(
            item_ids=sorted(visible),
            principal=principal,
            action=form.cleaned_data["action"],
            reason_code=form.cleaned_data["reason_code"],
        )
    except DomainError as error:
        return _bulk_refused(request, f"Nothing changed: {error.message}.", status=error.status_code)
    verb = "Approved" if form.cleaned_data["action"] == "approve" else "Rejected"
    messages.success(request, f"{verb} {len(resolved)} item{pluralize(len(resolved))}.")
    for item_id, reason in failed.items():
        messages.error(request, f"Item {item_id} was left as it was: {reason}.")
    return redirect(f"{reverse('review:search')}?{request.POST.get('query', '')}")
