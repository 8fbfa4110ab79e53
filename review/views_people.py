"""People: supervisors add operators and supervisors, set their teams, deactivate them, reset
passwords, and set which queues each team works. Every change is a service in
exceptions_app/services/people.py and writes an audit event."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import replace_url

from exceptions_app.errors import DomainError
from exceptions_app.models import AuditEvent, Principal, Queue, Team
from exceptions_app.services import people
from review.access import supervisor_for
from review.forms_people import ActiveForm, PasswordResetForm, PersonAddForm, PersonChangeForm, TeamQueuesForm

PAGE = "The People page"


def errors_named(form) -> str:
    """Each refused field by its name (as posted), with its reasons."""
    return "; ".join(f"{field}: {' '.join(problems)}" for field, problems in form.errors.items())


HISTORY_LENGTH = 50


def _people():
    return (
        Principal.objects.filter(role__in=people.PERSON_ROLES)
        .select_related("user")
        .prefetch_related(Prefetch("teams", queryset=Team.objects.prefetch_related("queues").order_by("name")))
        .order_by("user__username")
    )


def _list_page(request, *, status: int = 200, add_form=None, team_form=None):
    context = {
        "people": _people(),
        "teams": Team.objects.prefetch_related("queues", "members__user").order_by("name"),
        "add_form": add_form or PersonAddForm(),
        "team_form": team_form or TeamQueuesForm(),
        "queues": Queue.objects.order_by("name"),
    }
    response = TemplateResponse(request, "review/people.html", context, status=status)
    return replace_url(response, reverse("review:people")) if request.htmx else response


def _person_page(request, user_id: int, *, status: int = 200, change_form=None, password_form=None):
    principal = _people().filter(user_id=user_id).first()
    if principal is None:
        messages.error(request, f"There is no person with id {user_id}.")
        return _list_page(request, status=404)
    context = {
        "person": principal,
        "change_form": change_form
        or PersonChangeForm(initial={"role": principal.role, "teams": [team.name for team in principal.teams.all()]}),
        "password_form": password_form or PasswordResetForm(),
        "history": AuditEvent.objects.filter(payload__person=principal.user.get_username()).order_by(
            "-created_at", "-id"
        )[:HISTORY_LENGTH],
    }
    response = TemplateResponse(request, "review/person.html", context, status=status)
    return replace_url(response, reverse("review:person", args=[user_id])) if request.htmx else response


def _refused(request, message: str, render, *, status: int):
    messages.error(request, f"Nothing changed: {message}")
    return render(status=status)


@require_GET
@login_required
def people_list(request):
    supervisor_for(request, page=PAGE)
    return _list_page(request)


def _list_action(request, form_class, act, *, form_name: str, said):
    """A change made from the People list: refused, the list again with the form as typed and why;
    done, ``said(result, data)`` and the list."""
    supervisor = supervisor_for(request, page=PAGE)
    form = form_class(request.POST)
    render = lambda status: _list_page(request, status=status, **{form_name: form})  # noqa: E731
    if not form.is_valid():
        return _refused(request, errors_named(form), render, status=400)
    try:
        result = act(actor=supervisor.user, data=form.cleaned_data)
    except DomainError as error:
        return _refused(request, error.message, render, status=error.status_code)
    messages.success(request, said(result, form.cleaned_data))
    return redirect("review:people")


@require_POST
@login_required
def person_add(request):
    def add(actor, data):
        return people.person_create(
            actor=actor, username=data["username"], role=data["role"], teams=data["teams"], password=data["password"]
        )

    said = lambda _, data: f"Added {data['username']} as {data['role']}."  # noqa: E731
    return _list_action(request, PersonAddForm, add, form_name="add_form", said=said)


@require_GET
@login_required
def person_page(request, user_id: int):
    supervisor_for(request, page=PAGE)
    return _person_page(request, user_id)


def _person_action(request, user_id: int, form_class, act, *, done: str, form_name: str | None):
    supervisor = supervisor_for(request, page=PAGE)
    form = form_class(request.POST)

    def render(status):
        return _person_page(request, user_id, status=status, **({form_name: form} if form_name else {}))

    if not form.is_valid():
        return _refused(request, errors_named(form), render, status=400)
    try:
        principal = act(actor=supervisor.user, user_id=user_id, data=form.cleaned_data)
    except DomainError as error:
        if error.status_code == 404:
            messages.error(request, error.message)
            return _list_page(request, status=404)
        return _refused(request, error.message, render, status=error.status_code)
    state = "active" if principal.user.is_active else "deactivated (cannot sign in; tokens refused)"
    messages.success(request, done.format(name=principal.user.get_username(), state=state))
    return redirect("review:person", user_id=user_id)


@require_POST
@login_required
def person_change(request, user_id: int):
    def change(actor, user_id, data):
        return people.person_change(actor=actor, user_id=user_id, role=data["role"], teams=data["teams"])

    done = "Saved {name}'s role and teams."
    return _person_action(request, user_id, PersonChangeForm, change, done=done, form_name="change_form")


@require_POST
@login_required
def person_active(request, user_id: int):
    def set_active(actor, user_id, data):
        return people.person_set_active(actor=actor, user_id=user_id, active=data["active"])

    return _person_action(
        request, user_id, ActiveForm, set_active, done="Saved: {name} is now {state}.", form_name=None
    )


@require_POST
@login_required
def person_password(request, user_id: int):
    def password_set(actor, user_id, data):
        return people.person_password_set(actor=actor, user_id=user_id, password=data["password"])

    done = "Set a new password for {name}. Tell them through a channel you trust."
    return _person_action(request, user_id, PasswordResetForm, password_set, done=done, form_name="password_form")


@require_POST
@login_required
def team_queues(request):
    def queues_set(actor, data):
        return people.team_queues_set(actor=actor, name=data["team"], queues=data["queues"])

    said = lambda team, data: f"Team {team.name} works: {', '.join(data['queues']) or 'no queue'}."  # noqa: E731
    return _list_action(request, TeamQueuesForm, queues_set, form_name="team_form", said=said)
