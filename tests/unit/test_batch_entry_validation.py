"""BatchEntryValidation gives what BatchEntryInput().run_validation gives: the same validated entry, or the same
error detail, for entries good and bad (it only leaves out per-call work that does nothing for these entries)."""

import pytest
from rest_framework import serializers as drf_serializers

from exceptions_app.api.serializers import BatchEntryInput, BatchEntryValidation

GOOD = {
    "workflow": "billing.invoice_adjustment",
    "output": {"amount": 12.5},
    "confidence": 0.93,
    "input": {"invoice_total": 40},
    "context": None,
    "trace": [{"tool": "lookup"}],
    "correlation_id": "  padded  ",
    "callback_url": "https://hooks.example.com/tollgate",
    "value_at_risk": "12.34",
    "model_version": "v1",
    "idempotency_key": "k-1",
}
ENTRIES = [
    GOOD,
    {"workflow": "w", "output": None, "confidence": 1},
    {"workflow": "w", "output": [1], "confidence": 0.5, "unknown": "ignored"},
    {**GOOD, "confidence": True},
    {**GOOD, "confidence": 1.5},
    {**GOOD, "callback_url": "not a url"},
    {**GOOD, "workflow": ""},
    {**GOOD, "workflow": "x" * 129},
    {**GOOD, "value_at_risk": "-1"},
    {**GOOD, "value_at_risk": "12.345"},
    {**GOOD, "value_at_risk": "1e30"},
    {**GOOD, "correlation_id": 42},
    {**GOOD, "idempotency_key": None},
    {"output": {}},
    {"workflow": "w", "confidence": 0.5},
    {
        "workflow": "w",
        "confidence": 0.5,
        "interrupt": {
            "action_request": {"action": "refund", "args": {"amount": 3}},
            "config": {"allow_accept": True, "allow_edit": True, "allow_respond": False, "allow_ignore": False},
            "description": "refund?",
        },
    },
    {"workflow": "w", "confidence": 0.5, "interrupt": {"action_request": 3}},
    {},
    [],
    "text",
    None,
]


def _outcome(validate, entry):
    try:
        return "ok", validate(entry)
    except drf_serializers.ValidationError as error:
        return "error", error.detail


@pytest.mark.parametrize("entry", ENTRIES)
def test_batch_entry_validation_matches_the_serializer(entry):
    validation = BatchEntryValidation()
    expected = _outcome(BatchEntryInput().run_validation, entry)
    assert _outcome(validation.validate, entry) == expected
    assert _outcome(validation.validate, entry) == expected  # again, with the repeated values remembered


def test_the_fast_path_is_taken():
    # If BatchEntryInput gains serializer validators or validate_<field> hooks, the fast path is off: say so.
    assert BatchEntryValidation()._direct


def test_a_remembered_value_is_not_reused_for_another_value():
    validation = BatchEntryValidation()
    validation.validate(GOOD)
    with pytest.raises(drf_serializers.ValidationError) as refused:
        validation.validate({**GOOD, "callback_url": "mailto:x@example.com"})
    assert "callback_url" in refused.value.detail
