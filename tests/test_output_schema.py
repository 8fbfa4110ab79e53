"""The output-schema check: a fast Rust validator says "valid", the reference Python one explains "invalid"."""

from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from exceptions_app.policy.evaluation import OutputSchema

POLICIES = sorted((Path(__file__).resolve().parent.parent / "policies").glob("*.yaml"))
BILLING_SCHEMA = yaml.safe_load((POLICIES[0].parent / "billing.invoice_adjustment.yaml").read_text())["output_schema"]


def _reference_errors(schema: dict, output: object) -> list[tuple[str, str]]:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return sorted((list(error.absolute_path), error.message) for error in validator.iter_errors(output))


@pytest.mark.parametrize("path", POLICIES, ids=[path.stem for path in POLICIES])
def test_every_shipped_policy_schema_gets_the_fast_validator(path):
    assert OutputSchema(yaml.safe_load(path.read_text())["output_schema"]).fast is not None


@pytest.mark.parametrize(
    "output",
    [
        {},
        {"amount": "12"},
        {"amount": -5, "currency": "usd"},
        {"kind": "gift", "amount": 1e309},
        ["not", "an", "object"],
        None,
        {"amount": 10, "currency": "USD", "kind": "credit", "unexpected": {"deep": [1, 2, 3]}},
    ],
)
def test_an_invalid_output_is_explained_exactly_as_the_reference_validator_does(output):
    schema = OutputSchema(BILLING_SCHEMA)

    errors = schema.errors(output)

    assert errors, "every case here breaks the schema"
    assert sorted((error["path"], error["message"]) for error in errors) == sorted(
        ("output" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path), message)
        for path, message in _reference_errors(BILLING_SCHEMA, output)
    )


def test_formats_are_enforced_on_the_fast_path_too():
    schema = OutputSchema({"type": "object", "properties": {"due": {"type": "string", "format": "date"}}})

    assert schema.errors({"due": "2026-12-01"}) == []
    assert [error["path"] for error in schema.errors({"due": "the first of December"})] == ["output.due"]


def test_a_schema_the_fast_validator_cannot_compile_falls_back_to_the_reference_one():
    # A reference to a remote document is never fetched by the fast validator (offline).
    schema = OutputSchema({"$defs": {"n": {"type": "number"}}, "$ref": "https://example.invalid/schema.json"})

    assert schema.fast is None
