"""Work mode: one item, its captured state, and the actions on it."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import replace_url

from exceptions_app import rules
from exceptions_app.errors import DomainError, InvalidInput
from exceptions_app.policy.evaluation import output_schema_errors, policy_compile
from exceptions_app.selectors import item_visible_check, item_visible_get
from exceptions_app.services import items as lifecycle
from review import forms
from review.access import person_for
from review.forms import errors_named
from review.presentation import diff_lines, item_view, pretty


def _page(request, item_id: int, *, status: int = 200, **extra):
    principal = person_for(request)
    item = item_visible_get(principal=principal, item_id=item_id)
    context = {
        **item_view(item, viewer=request.user),
        "reject_form": forms.RejectForm(),
        "snooze_form": forms.SnoozeForm(),
        "note_form": forms.NoteForm(),
        "comment_form": forms.CommentForm(),
        "is_supervisor": rules.principal_is_supervisor(principal),
        "reassign_form": forms.ReassignForm(),
        "priority_form": forms.PriorityForm(initial={"priority": item.priority}),
        "modify_form": forms.ModifyForm(initial={"output": pretty(item.proposal)}),
        **extra,
    }
    return TemplateResponse(request, "review/item.html", context, status=status)


def _refused(request, item_id: int, message: str, *, status: int):
    """A refused action: the item's page again with the reason, and the status saying why (400 bad
    input, 403 not yours to do, 409 an illegal transition or a lost lease). Nothing was written.
    htmx swaps it in (htmx-config in base.html) and keeps the item's address in the bar."""
    messages.error(request, message)
    response = _page(request, item_id, status=status)
    return replace_url(response, reverse("review:item", args=[item_id])) if request.htmx else response


@require_GET
@login_required
def item_page(request, item_id: int):
    return _page(request, item_id)


def _after_resolution(request, item, principal, *, queue):
    """Load the next item of the queue the operator was working, so a queue can be worked from the
    keyboard. That is the queue the item was in before the action: an escalated item has moved to
    the escalation queue, and handing it straight back to the person who escalated it would undo
    the escalation."""
    if request.POST.get("then") == "stay":
        return redirect("review:item", item_id=item.pk)
    next_item = lifecycle.item_claim_next(queue=queue, principal=principal)
    if next_item is None:
        messages.info(request, f"Queue {queue.name} is empty. Nice work.")
        return redirect("review:home")
    return redirect("review:item", item_id=next_item.pk)


def _act(request, item_id: int, action, *, form_class=None, resolves=False):
    principal = person_for(request)
    worked_queue = item_visible_get(principal=principal, item_id=item_id).queue
    data = {}
    if form_class is not None:
        form = form_class(request.POST)
        if not form.is_valid():
            return _refused(request, item_id, f"Nothing changed: {errors_named(form)}", status=400)
        data = form.cleaned_data
    try:
        item = action(principal, data)
    except DomainError as error:
        return _refused(request, item_id, f"Nothing changed: {error.message}", status=error.status_code)
    if resolves:
        messages.success(request, f"Item {item_id} {item.resolution or item.status}.")
        return _after_resolution(request, item, principal, queue=worked_queue)
    return redirect("review:item", item_id=item_id)


@require_POST
@login_required
def item_claim(request, item_id: int):
    return _act(request, item_id, lambda principal, data: lifecycle.item_claim(item_id=item_id, principal=principal))


@require_POST
@login_required
def item_renew(request, item_id: int):
    """Called by the console while the operator is active: the new lease end, or 409 and why not.
    An item outside the operator's queues is a 404 like everywhere else, not a 409 telling its state."""
    principal = person_for(request)
    item_visible_check(principal=principal, item_id=item_id)
    try:
        item = lifecycle.item_renew_lease(item_id=item_id, principal=principal)
    except DomainError as error:
        return JsonResponse({"error": error.message}, status=409)
    return JsonResponse({"lease_expires_at": item.claim_expires_at.isoformat()})


@require_POST
@login_required
def item_release(request, item_id: int):
    def release(principal, data):
        return lifecycle.item_release(item_id=item_id, principal=principal, note=data.get("note", ""))

    return _act(request, item_id, release, form_class=forms.NoteForm)


@require_POST
@login_required
def item_approve(request, item_id: int):
    def approve(principal, data):
        return lifecycle.item_resolve(item_id=item_id, principal=principal, action="approve", note=data["note"])

    return _act(request, item_id, approve, form_class=forms.NoteForm, resolves=True)


@require_POST
@login_required
def item_reject(request, item_id: int):
    def reject(principal, data):
        return lifecycle.item_resolve(
            item_id=item_id, principal=principal, action="reject", reason_code=data["reason_code"], note=data["note"]
        )

    return _act(request, item_id, reject, form_class=forms.RejectForm, resolves=True)


@require_POST
@login_required
def item_escalate(request, item_id: int):
    def escalate(principal, data):
        return lifecycle.item_resolve(item_id=item_id, principal=principal, action="escalate", note=data["note"])

    return _act(request, item_id, escalate, form_class=forms.NoteForm, resolves=True)


@require_POST
@login_required
def item_snooze(request, item_id: int):
    def snooze(principal, data):
        until = timezone.now() + timedelta(seconds=data["seconds"])
        return lifecycle.item_snooze(item_id=item_id, principal=principal, until=until, note=data["note"])

    return _act(request, item_id, snooze, form_class=forms.SnoozeForm, resolves=True)


@require_POST
@login_required
def item_comment(request, item_id: int):
    def comment(principal, data):
        lifecycle.item_comment_add(item_id=item_id, principal=principal, text=data["text"])
        return None

    return _act(request, item_id, comment, form_class=forms.CommentForm)


def _edit_check(request, item_id: int) -> dict:
    """Parse and validate the edited output; the diff against the proposal and field errors."""
    item = item_visible_get(principal=person_for(request), item_id=item_id)
    form = forms.ModifyForm(request.POST)
    context = {"item": item, "modify_form": form, "schema_errors": [], "diff": []}
    if form.is_valid():
        version = item.policy_version
        validator = policy_compile(version.pk, version.document).output_validator
        context["schema_errors"] = output_schema_errors(validator, form.cleaned_data["output"])
        context["diff"] = diff_lines(item.proposal, form.cleaned_data["output"])
    return context


@require_POST
@login_required
def item_edit_preview(request, item_id: int):
    return TemplateResponse(request, "review/item.html#edit-check", _edit_check(request, item_id))


@require_POST
@login_required
def item_modify(request, item_id: int):
    context = _edit_check(request, item_id)
    form = context["modify_form"]
    if not form.is_valid() or context["schema_errors"]:
        return _page(
            request,
            item_id,
            modify_form=form,
            schema_errors=context["schema_errors"],
            diff=context["diff"],
            editor_open=True,
            status=400,
        )
    principal = person_for(request)
    try:
        item = lifecycle.item_resolve(
            item_id=item_id,
            principal=principal,
            action="modify",
            output=form.cleaned_data["output"],
            note=form.cleaned_data["note"],
        )
    except InvalidInput as error:
        return _page(request, item_id, modify_form=form, schema_errors=error.fields, editor_open=True, status=400)
    except DomainError as error:
        return _refused(request, item_id, f"Nothing changed: {error.message}", status=error.status_code)
    messages.success(request, f"Item {item_id} approved with your edit.")
    return _after_resolution(request, item, principal, queue=context["item"].queue)


@require_POST
@login_required
def item_reassign(request, item_id: int):
    def reassign(principal, data):
        return lifecycle.item_reassign(item_id=item_id, principal=principal, to_username=data["to"])

    return _act(request, item_id, reassign, form_class=forms.ReassignForm)


@require_POST
@login_required
def item_reprioritise(request, item_id: int):
    def reprioritise(principal, data):
        return lifecycle.item_reprioritise(
            item_id=item_id, principal=principal, priority=data["priority"], note=data["note"]
        )

    return _act(request, item_id, reprioritise, form_class=forms.PriorityForm)
