import json

from django import forms

from exceptions_app import rules
from exceptions_app.models import ItemKind, ItemStatus
from exceptions_app.rules import REASON_CODE_HELP, reason_code_validator
from exceptions_app.strict_json import JsonRefused, strict_loads


def errors_in_words(form: forms.Form) -> str:
    """Each refused field by its label, with its reasons, for the message a refused form answers with."""
    return "; ".join(
        f"{form[name].label if name in form.fields else 'Form'}: {' '.join(problems)}"
        for name, problems in form.errors.items()
    )


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
    """A rejection's reason: one of the policy's ``reject_reasons`` (r, then 1 to 9) or, where the
    policy allows it, a typed code. ``cleaned_data["code"]`` is the one chosen."""

    reason_code = forms.ChoiceField(required=False, widget=forms.RadioSelect, label="Reason")
    reason_text = forms.CharField(
        max_length=64,
        required=False,
        label="Other reason code",
        help_text=REASON_CODE_HELP,
        validators=[reason_code_validator],
    )
    note = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, reasons=(), free_text: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if reasons:
            self.fields["reason_code"].choices = [
                (reason["code"], f"{number}. {reason['label']}" if number <= 9 else reason["label"])
                for number, reason in enumerate(reasons, start=1)
            ]
        else:
            del self.fields["reason_code"]
        if not free_text:
            del self.fields["reason_text"]
        elif reasons:
            self.fields["reason_text"].help_text = f"instead of a reason above: {REASON_CODE_HELP}"
        else:
            self.fields["reason_text"].label = "Reason code"

    def clean(self):
        cleaned = super().clean()
        chosen, typed = cleaned.get("reason_code"), cleaned.get("reason_text")
        if chosen and typed:
            self.add_error("reason_text", "Pick a reason above or type one, not both.")
        elif not chosen and not typed and not self.has_error("reason_text"):
            first = "reason_code" if "reason_code" in self.fields else "reason_text"
            self.add_error(first, "A rejection needs a reason.")
        cleaned["code"] = chosen or typed
        return cleaned


class NoteForm(SingleValuedForm):
    note = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RespondForm(SingleValuedForm):
    """A text answer to a LangGraph interrupt that allows a response (exceptions_app/interrupts.py)."""

    note = forms.CharField(
        max_length=4000, label="Your response to the agent", widget=forms.Textarea(attrs={"rows": 3})
    )


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
    kind = forms.ChoiceField(required=False, choices=[("", "any"), *ItemKind.choices])
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
    # No default: "Apply to selected" must never approve because nobody chose otherwise.
    action = forms.ChoiceField(choices=[("", "Choose…"), ("approve", "Approve"), ("reject", "Reject")])
    confirmed = forms.BooleanField(required=False)
    reason_code = forms.CharField(
        max_length=64, required=False, help_text="required to reject", validators=[reason_code_validator]
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
