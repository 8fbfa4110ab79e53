"""The People page's forms. They check shape only; the rules (roles, existing teams, password
strength, who may change whom) live in exceptions_app/services/people.py."""

from django import forms

from exceptions_app.models import Queue, Role, Team
from exceptions_app.services.people import PERSON_ROLES
from review.forms import SingleValuedForm

ROLE_CHOICES = [(role.value, role.label) for role in PERSON_ROLES]


def _team_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in Team.objects.order_by("name").values_list("name", flat=True)]


def _queue_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in Queue.objects.order_by("name").values_list("name", flat=True)]


class _TeamsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple


class _PasswordTwice:
    """A form with ``password`` and ``password_again``: the two must match."""

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", "does not match the password")
        return cleaned


class PersonChangeForm(SingleValuedForm):
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.OPERATOR)
    teams = _TeamsField(required=False, help_text="the queues of these teams are the person's to work")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["teams"].choices = _team_choices()


class PersonAddForm(_PasswordTwice, PersonChangeForm):
    username = forms.CharField(max_length=150, help_text="letters, digits and @ . + - _")
    password = forms.CharField(widget=forms.PasswordInput(render_value=False), max_length=256, strip=False)
    password_again = forms.CharField(widget=forms.PasswordInput(render_value=False), max_length=256, strip=False)
    field_order = ["username", "role", "teams", "password", "password_again"]


class PasswordResetForm(_PasswordTwice, SingleValuedForm):
    password = forms.CharField(
        label="New password", widget=forms.PasswordInput(render_value=False), max_length=256, strip=False
    )
    password_again = forms.CharField(
        label="New password again", widget=forms.PasswordInput(render_value=False), max_length=256, strip=False
    )


class ActiveForm(SingleValuedForm):
    active = forms.TypedChoiceField(
        choices=[("true", "active"), ("false", "deactivated")], coerce=lambda v: v == "true"
    )


class TeamQueuesForm(SingleValuedForm):
    team = forms.SlugField(max_length=64, help_text="an existing team, or a new one to create")
    queues = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["queues"].choices = _queue_choices()
