"""What a policy asks of its reviewers (exceptions_app/policy/review.py), without an engine:
confirmations in proportion to risk, evidence from the rules' operands, reasons to reject."""

from pathlib import Path

import yaml

from exceptions_app.policy import review
from exceptions_app.policy.document import policy_document_errors

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def policy(name: str) -> dict:
    return yaml.safe_load((POLICIES / f"{name}.yaml").read_text())


def test_the_iban_rule_needs_a_confirmation_naming_its_risk():
    document = policy("documents.field_extraction")

    risks = review.confirmation_risks(document, reasons=[{"code": "iban_changed"}], value_at_risk=None)
    routine = review.confirmation_risks(document, reasons=[{"code": "low_field_confidence"}], value_at_risk=None)

    assert len(risks) == 1
    assert risks[0].startswith("iban_changed (critical)")
    assert "calling the supplier" in risks[0]
    assert routine == []


def test_a_value_at_or_above_the_policy_limit_needs_a_confirmation():
    document = policy("billing.invoice_adjustment")

    assert review.confirmation_risks(document, reasons=[], value_at_risk="50000.00")
    assert review.confirmation_risks(document, reasons=[], value_at_risk="49999.99") == []
    assert review.confirmation_risks(document, reasons=[], value_at_risk=None) == []


def test_evidence_is_the_fields_the_policy_names_with_their_values():
    document = policy("documents.field_extraction")
    captured = {"output": {"iban": "DE89370400440532013000"}, "input": {}, "context": {}}

    shown = review.evidence(document, reasons=[{"code": "iban_changed"}], captured=captured)

    assert [(field["path"], field["missing"]) for field in shown["iban_changed"]] == [
        ("output.iban", False),
        ("context.supplier_iban", True),
        ("output.supplier_name", True),
    ]
    assert shown["iban_changed"][0]["value"] == "DE89370400440532013000"


def test_without_named_evidence_the_expression_field_paths_are_used():
    expression = "has(input.invoice_total) && output.type == 'credit' && output.amount > input.invoice_total"
    macro = "has(output.lines) && output.lines.map(l, l.amount).exists(a, a < 0.0)"

    assert review.cel_field_paths(expression) == ["input.invoice_total", "output.type", "output.amount"]
    assert review.cel_field_paths(macro) == ["output.lines"]


def test_the_review_layout_comes_from_schema_titles_or_the_policy():
    billing = policy("billing.invoice_adjustment")
    documents = policy("documents.field_extraction")
    invoice = {"output": {"invoice_id": "INV-1", "amount": 12.5}, "input": {}, "context": {}}
    scan = {"output": {"supplier_name": "ACME", "iban": "X"}, "input": {}, "context": {"supplier_iban": "Y"}}

    from_titles = review.review_fields(billing, captured=invoice)
    from_layout = review.review_fields(documents, captured=scan)

    assert [(field["label"], field["value"]) for field in from_titles[0]["fields"]] == [
        ("Invoice", "INV-1"),
        ("Amount", 12.5),
    ]
    assert [section["name"] for section in from_layout] == ["output", "context"]
    assert from_layout[1]["fields"][0] == {"path": "context.supplier_iban", "label": "Supplier iban", "value": "Y"}


def test_reject_reasons_are_checked_with_the_one_reason_code_rule():
    document = policy("billing.invoice_adjustment")
    document["reject_reasons"] = [
        {"code": "Wrong Amount", "label": "x"},
        {"code": "dup", "label": "y"},
        {"code": "dup", "label": "z"},
    ]

    errors = [str(error) for error in policy_document_errors(document)]

    assert any("reject_reasons[0].code" in error for error in errors)
    document["reject_reasons"] = document["reject_reasons"][1:]
    assert [str(error) for error in policy_document_errors(document)] == [
        "reject_reasons[1].code: duplicate reject reason 'dup'"
    ]


def test_typed_reason_codes_are_allowed_unless_the_policy_lists_reasons_and_says_no():
    assert review.reject_free_text_allowed({}) is True
    assert review.reject_free_text_allowed({"reject_reasons": [{"code": "a", "label": "A"}]}) is False
    assert review.reject_free_text_allowed({"reject_reasons": [{"code": "a", "label": "A"}], "reject_free_text": True})


def test_the_iban_rule_takes_the_iban_typed_as_its_attestation():
    document = policy("documents.field_extraction")
    captured = {"output": {"iban": "DE89 3704 0044 0532 0130 00"}, "input": {}, "context": {}}

    attestation = review.typed_attestation(document, reasons=[{"code": "iban_changed"}], captured=captured)

    assert (attestation.rule, attestation.what) == ("iban_changed", "the value of output.iban")
    assert review.attestation_problem(attestation, "de89370400440532013000") == ""  # spaces and case aside
    assert review.attestation_problem(attestation, "") == "type the value of output.iban to confirm"
    assert "not the value of output.iban" in review.attestation_problem(attestation, "DE00 0000")
    routine = [{"code": "low_field_confidence"}]
    assert review.typed_attestation(document, reasons=routine, captured=captured) is None
    assert review.attestation_problem(None, "") == ""
    assert review.needs_typed_attestation(document, reasons=[{"code": "iban_changed"}])
    assert not review.needs_typed_attestation(document, reasons=routine)


def test_without_the_attested_field_the_rule_code_is_typed():
    document = policy("documents.field_extraction")

    attestation = review.typed_attestation(
        document, reasons=[{"code": "iban_changed"}], captured={"output": {}, "input": {}, "context": {}}
    )

    assert (attestation.expected, attestation.what) == ("iban_changed", "the rule's code")


def test_attest_is_refused_without_a_typed_confirmation_and_confirm_takes_only_known_values():
    document = policy("documents.field_extraction")
    rule = next(rule for rule in document["rules"] if rule["code"] == "iban_changed")
    rule["confirm"] = True

    assert [(error.path, error.message) for error in policy_document_errors(document)] == [
        ("rules[3].attest", "needs confirm: typed")
    ]
    rule["confirm"] = "spoken"
    assert [error.path for error in policy_document_errors(document)] == ["rules[3].confirm"]
