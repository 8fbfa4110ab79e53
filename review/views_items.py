"""Work mode: one item, its captured state, and the actions on it.

A refused action answers the item's page again with the panel it came from open, the values typed
in it kept, and the reason beside the field (or at the top of the panel when it is not a field's),
which takes the focus. The address bar always shows the item's page, never the action's URL."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, replace_url

from exceptions_app import interrupts, rules
from exceptions_app.errors import DomainError, InvalidInput
from exceptions_app.policy import review
from exceptions_app.policy.evaluation import output_schema_errors, policy_compile
from exceptions_app.selectors import item_consensus, item_visible_check, item_visible_get, items_claimed_by
from exceptions_app.services import items as lifecycle
from exceptions_app.services.undo import item_resolution_undo, undo_window
from review import forms
from review.access import login_required_keeping_decision, pending_decision_take, person_for
from review.context import UNDO_OFFER
from review.presentation import captured_state, diff_lines, item_view, pretty

# Each panel of the item page and its form; ids are prefixed by the panel so no two fields share one.
PANELS = {
    "reject": forms.RejectForm,
    "respond": forms.RespondForm,
    "escalate": forms.NoteForm,
    "snooze": forms.SnoozeForm,
    "comment": forms.CommentForm,
    "reassign": forms.ReassignForm,
    "priority": forms.PriorityForm,
}


def _panel_form(panel: str, data=None, *, item, **kwargs):
    if panel == "reject":
        document = item.policy_version.document
        kwargs |= {"reasons": review.reject_reasons(document), "free_text": review.reject_free_text_allowed(document)}
    return PANELS[panel](data, auto_id=f"{panel}_%s", **kwargs)


def _page(request, item_id: int, *, status: int = 200, bound: dict | None = None, next_item: bool = False, **extra):
    """The item's page. Answering a POST, the address bar is set to it: replaced for a refusal (the
    same item), pushed for ``next_item`` (the item a resolution moved on to)."""
    principal = person_for(request)
    item = item_visible_get(principal=principal, item_id=item_id)
    panel_forms = {f"{panel}_form": _panel_form(panel, item=item) for panel in PANELS}
    panel_forms["priority_form"] = _panel_form("priority", item=item, initial={"priority": item.priority})
    context = {
        **item_view(item, viewer=request.user),
        **panel_forms,
        **(bound or {}),
        "is_supervisor": rules.principal_is_supervisor(principal),
        "modify_form": forms.ModifyForm(initial={"output": pretty(item.proposal)}),
        "my_claims": list(items_claimed_by(principal=principal)),
        "pending": pending_decision_take(request, item_id=item_id),
        **extra,
    }
    response = TemplateResponse(request, "review/item.html", context, status=status)
    if request.method != "POST":
        return response
    # The address must always be a page that can be reloaded, never the action's URL.
    address = reverse("review:item", args=[item_id])
    return push_url(response, address) if next_item else replace_url(response, address)


def _refused(request, item_id: int, message: str, *, status: int, panel: str = "", form=None):
    """A refused action: the item's page again with the status saying why (400 bad input, 403 not
    yours to do, 409 an illegal transition or a lost lease). Nothing was written. The panel the
    action came from is open with what was typed; the reason is in it and takes the focus."""
    if not panel:
        messages.error(request, message)
    bound = {f"{panel}_form": form} if panel and form is not None else {}
    return _page(request, item_id, status=status, bound=bound, open_panel=panel, refusal=message)


@require_GET
@login_required
def item_page(request, item_id: int):
    return _page(request, item_id)


def _back_or_item(request, item_id: int):
    """Where a claim list's Release came from (a page of this site), else the item's page."""
    back = request.POST.get("back", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("review:item", item_id=item_id)


def _after_resolution(request, item, principal, *, queue):
    """Load the next item of the queue the operator was working, so a queue can be worked from the
    keyboard. That is the queue the item was in before the action: an escalated item has moved to
    the escalation queue, and handing it straight back to the person who escalated it would undo
    the escalation."""
    if request.POST.get("then") == "stay":
        return redirect("review:item", item_id=item.pk)
    next_item = lifecycle.item_claim_next(queue=queue, principal=principal)
    if next_item is None:
        messages.info(request, f"The {queue.name} queue is empty. Nice work.")
        return redirect("review:home")
    if request.htmx:
        # One round trip per key: the answer is the next item's page, and the address bar shows it.
        return _page(request, next_item.pk, next_item=True)
    return redirect("review:item", item_id=next_item.pk)


def _offer_undo(request, item, said: str) -> None:
    """Say what was decided; a resolution can be undone until its delivery is released."""
    if item.status == "resolved" and undo_window():
        request.session[UNDO_OFFER] = {
            "item_id": item.pk,
            "said": said,
            "until": (item.resolved_at + undo_window()).isoformat(),
        }
    else:
        messages.success(request, _vote_said(item, said))


def _vote_said(item, said: str) -> str:
    """What a decision did when it was one vote among several and did not settle the item."""
    consensus = item_consensus(item) if item.status == "open" else None
    if consensus is None:
        return said
    if consensus["kind"] == "approvals":
        counted = f"{consensus['approvals']} of {consensus['required']} approvals"
        return f"{said[:-1]}: {counted} so far; it went back to the queue for someone else."
    if consensus["adjudication"]:
        return (
            f"Judged item {item.pk}: the judges disagree, so it went to the {item.queue.name} queue for adjudication."
        )
    return f"Judged item {item.pk}: {consensus['judgements']} of {consensus['required']} blind judgements are in."


def _act(request, item_id: int, action, *, panel: str = "", form_class=None, done=None, item=None):
    """Run ``action`` with the cleaned data of the panel's form (or of ``form_class`` for an action
    without a panel). ``done(item)`` names a resolution in plain English, and then the next item of
    the worked queue is loaded; without it, the item's page. ``item``: the item, if the view has
    already read it (the action reads it again, locked)."""
    principal = person_for(request)
    item = item or item_visible_get(principal=principal, item_id=item_id)
    worked_queue = item.queue
    data, form = {}, None
    if panel or form_class is not None:
        form = _panel_form(panel, request.POST, item=item) if panel else form_class(request.POST)
        if not form.is_valid():
            message = f"Nothing changed: {forms.errors_in_words(form)}"
            return _refused(request, item_id, message, status=400, panel=panel, form=form)
    data = form.cleaned_data if form is not None else {}
    try:
        item = action(principal, data)
    except DomainError as error:
        for field in error.fields:  # the service names the field it refused: show it beside that field
            if form is not None and field.get("path") in form.fields:
                form.add_error(field["path"], f"{field['message'][:1].upper()}{field['message'][1:]}.")
        return _refused(
            request, item_id, f"Nothing changed: {error.message}.", status=error.status_code, panel=panel, form=form
        )
    if done is not None:
        _offer_undo(request, item, done(item))
        return _after_resolution(request, item, principal, queue=worked_queue)
    return redirect("review:item", item_id=item_id)


@require_POST
@login_required_keeping_decision
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
@login_required_keeping_decision
def item_release(request, item_id: int):
    principal = person_for(request)
    form = forms.NoteForm(request.POST)
    if not form.is_valid():
        return _refused(request, item_id, f"Nothing changed: {forms.errors_in_words(form)}", status=400)
    try:
        lifecycle.item_release(item_id=item_id, principal=principal, note=form.cleaned_data["note"])
    except DomainError as error:
        return _refused(request, item_id, f"Nothing changed: {error.message}.", status=error.status_code)
    messages.success(request, f"Released item {item_id}: it is back in its queue.")
    return _back_or_item(request, item_id)


@require_POST
@login_required_keeping_decision
def item_approve(request, item_id: int):
    """One key approves a routine item; an item the policy marks as risky also needs the
    confirmation that names the risk (``confirmed=yes``, sent by its Confirm button), and one a
    ``confirm: typed`` rule held needs the attestation typed as well (``attestation``)."""
    item = item_visible_get(principal=person_for(request), item_id=item_id)
    document = item.policy_version.document
    risks = review.confirmation_risks(document, reasons=item.reasons, value_at_risk=item.value_at_risk)
    typed = request.POST.get("attestation", "")
    problem = review.attestation_problem(
        review.typed_attestation(document, reasons=item.reasons, captured=captured_state(item)), typed
    )
    if (risks and request.POST.get("confirmed") != "yes") or problem:
        message = "Nothing changed: approving this item needs a confirmation. Check the risk below, then confirm."
        if problem:
            message = f"Nothing changed: {problem}."
        return _page(
            request,
            item_id,
            status=400,
            open_panel="approve",
            refusal=message,
            attestation_typed=typed,
            attestation_error=f"{problem[:1].upper()}{problem[1:]}." if problem else "",
        )

    approve = _resolve(item_id, "approve", hold_delivery=undo_window())
    return _act(
        request, item_id, approve, form_class=forms.NoteForm, done=lambda item: f"Approved item {item_id}.", item=item
    )


def _resolve(item_id: int, action: str, **hold):
    """The console's resolution of ``item_id``: the note typed, and for a reject its reason code."""

    def resolve(principal, data):
        reason = {"reason_code": data["code"]} if "code" in data else {}
        return lifecycle.item_resolve(
            item_id=item_id, principal=principal, action=action, note=data["note"], **reason, **hold
        )

    return resolve


@require_POST
@login_required_keeping_decision
def item_reject(request, item_id: int):
    reject = _resolve(item_id, "reject", hold_delivery=undo_window())
    said = lambda item: f"Rejected item {item_id} ({item.reason_code})."  # noqa: E731
    return _act(request, item_id, reject, panel="reject", done=said)


@require_POST
@login_required_keeping_decision
def item_respond(request, item_id: int):
    """Answer a LangGraph interrupt with a text: the graph resumes with a ``response``."""
    item = item_visible_get(principal=person_for(request), item_id=item_id)
    if "respond" not in interrupts.allowed_actions(item.interrupt):
        # No Respond panel on this item's page to show the reason in: say it at the top.
        message = "Nothing changed: this item's agent does not take a response."
        return _refused(request, item_id, message, status=409)

    def respond(principal, data):
        return lifecycle.item_resolve(
            item_id=item_id, principal=principal, action="respond", note=data["note"], hold_delivery=undo_window()
        )

    return _act(
        request,
        item_id,
        respond,
        panel="respond",
        form_class=forms.RespondForm,
        done=lambda item: f"Sent your response on item {item_id}.",
    )


@require_POST
@login_required_keeping_decision
def item_escalate(request, item_id: int):
    said = lambda item: f"Escalated item {item_id} to the {item.queue.name} queue."  # noqa: E731
    return _act(request, item_id, _resolve(item_id, "escalate"), panel="escalate", done=said)


@require_POST
@login_required_keeping_decision
def item_snooze(request, item_id: int):
    def snooze(principal, data):
        until = timezone.now() + timedelta(seconds=data["seconds"])
        return lifecycle.item_snooze(item_id=item_id, principal=principal, until=until, note=data["note"])

    said = lambda item: f"Snoozed item {item_id} until {timezone.localtime(item.snoozed_until):%H:%M}."  # noqa: E731
    return _act(request, item_id, snooze, panel="snooze", done=said)


@require_POST
@login_required_keeping_decision
def item_comment(request, item_id: int):
    def comment(principal, data):
        lifecycle.item_comment_add(item_id=item_id, principal=principal, text=data["text"])
        return None

    return _act(request, item_id, comment, panel="comment")


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


def _edit_refused(request, item_id: int, context: dict, *, schema_errors, status: int = 400, refusal: str = ""):
    return _page(
        request,
        item_id,
        status=status,
        modify_form=context["modify_form"],
        schema_errors=schema_errors,
        diff=context["diff"],
        open_panel="editor",
        refusal=refusal,
    )


@require_POST
@login_required_keeping_decision
def item_modify(request, item_id: int):
    context = _edit_check(request, item_id)
    form = context["modify_form"]
    if not form.is_valid() or context["schema_errors"]:
        return _edit_refused(request, item_id, context, schema_errors=context["schema_errors"])
    principal = person_for(request)
    try:
        item = lifecycle.item_resolve(
            item_id=item_id,
            principal=principal,
            action="modify",
            output=form.cleaned_data["output"],
            note=form.cleaned_data["note"],
            hold_delivery=undo_window(),
        )
    except InvalidInput as error:
        return _edit_refused(request, item_id, context, schema_errors=error.fields)
    except DomainError as error:
        message = f"Nothing changed: {error.message}."
        return _edit_refused(request, item_id, context, schema_errors=[], status=error.status_code, refusal=message)
    _offer_undo(request, item, f"Approved item {item_id} with your edit.")
    return _after_resolution(request, item, principal, queue=context["item"].queue)


@require_POST
@login_required_keeping_decision
def item_reassign(request, item_id: int):
    def reassign(principal, data):
        return lifecycle.item_reassign(item_id=item_id, principal=principal, to_username=data["to"])

    return _act(request, item_id, reassign, panel="reassign")


@require_POST
@login_required_keeping_decision
def item_reprioritise(request, item_id: int):
    def reprioritise(principal, data):
        return lifecycle.item_reprioritise(
            item_id=item_id, principal=principal, priority=data["priority"], note=data["note"]
        )

    return _act(request, item_id, reprioritise, panel="priority")


@require_POST
@login_required_keeping_decision
def item_undo(request, item_id: int):
    """Take back a decision within its undo window: the item is the operator's again."""
    principal = person_for(request)
    item_visible_check(principal=principal, item_id=item_id)
    request.session.pop(UNDO_OFFER, None)
    try:
        item_resolution_undo(item_id=item_id, principal=principal)
    except DomainError as error:
        messages.error(request, f"Nothing changed: {error.message}.")
        return redirect("review:item", item_id=item_id)
    messages.success(request, f"Undone: item {item_id} is yours again, and nothing was sent.")
    return redirect("review:item", item_id=item_id)
