import json

from django import forms

from exceptions_app import rules
from exceptions_app.models import ItemStatus
from exceptions_app.strict_json import JsonRefused, strict_loads


def errors_named(form: forms.Form) -> str:
    """Each refused field with its reasons, for the message a refused form answers with."""
    return "; ".join(f"{field}: {' '.join(problems)}" for field, problems in form.errors.items())


class SingleValuedForm(forms.Form):
    """A field sent twice (``action=approve&action=reject``) is refused, not settled by whichever
    value came last: the operator cannot have meant both."""

    def clean(self):
        cleaned = super().clean()
        for name, field in self.fields.items():
            if not isinstance(field, forms.MultipleChoiceField) and len(self.data.getlist(name)) > 1:
                self.add_error(name, "given more than once")
        return cleaned


class RejectForm(SingleValuedForm):
    reason_code = forms.CharField(
        max_length=64, label="Reason code", help_text=rules.REASON_CODE_HELP, validators=[rules.reason_code_validator]
    )
    note = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class NoteForm(SingleValuedForm):
    note = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SnoozeForm(SingleValuedForm):
    CHOICES = [(900, "15 minutes"), (3600, "1 hour"), (14400, "4 hours"), (86400, "1 day")]
    seconds = forms.TypedChoiceField(choices=CHOICES, coerce=int, label="Snooze for")
    note = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class CommentForm(SingleValuedForm):
    text = forms.CharField(max_length=4000, label="Comment", widget=forms.Textarea(attrs={"rows": 2}))


class ModifyForm(SingleValuedForm):
    output = forms.CharField(
        label="Edited output (JSON)", widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"})
    )
    note = forms.CharField(max_length=4000, required=False)

    def clean_output(self):
        # The API's rules (exceptions_app.strict_json): an edit PostgreSQL cannot store, or deeper
        # than the later steps can walk, is a form error here rather than a 500 on save.
        try:
            return strict_loads(self.cleaned_data["output"])
        except JsonRefused as error:
            raise forms.ValidationError(f"cannot be accepted: {error.message}") from None
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
            ) from None
        except ValueError as error:
            raise forms.ValidationError(f"not valid JSON: {error}") from None


class SearchForm(forms.Form):
    workflow = forms.CharField(required=False, max_length=128)
    queue = forms.CharField(required=False, max_length=64)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *ItemStatus.choices])
    reason = forms.CharField(required=False, max_length=64, label="Reason code")
    correlation_id = forms.CharField(required=False, max_length=200, label="Correlation id")
    raised_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Raised from")
    raised_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Raised to")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("raised_from") and cleaned.get("raised_to") and cleaned["raised_from"] > cleaned["raised_to"]:
            raise forms.ValidationError("'Raised from' is after 'Raised to'")
        return cleaned


class BulkForm(SingleValuedForm):
    items = forms.TypedMultipleChoiceField(coerce=int, choices=[], label="Items")
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason_code = forms.CharField(
        max_length=64, required=False, help_text="required to reject", validators=[rules.reason_code_validator]
    )

    def __init__(self, *args, item_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = [(item_id, item_id) for item_id in item_ids]

    def clean(self):
        cleaned = super().clean()
        if "reason_code" in cleaned and cleaned.get("action") == "reject" and not cleaned["reason_code"]:
            self.add_error("reason_code", rules.resolution_reason_problem(action="reject", reason_code=""))
        return cleaned


class ReassignForm(SingleValuedForm):
    to = forms.SlugField(max_length=150, label="Hand to operator (username)")


class PriorityForm(SingleValuedForm):
    priority = forms.IntegerField(min_value=-10_000, max_value=10_000, label="New priority")
    note = forms.CharField(max_length=4000, required=False)
