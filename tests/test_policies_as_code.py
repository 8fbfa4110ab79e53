"""Policies as code: the shipped policies/ folder publishes, re-publishes idempotently, refuses broken
files without writing anything, and each example policy's rules fire on the cases they are for."""

import copy
import io
import shutil
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from exceptions_app.models import PolicyVersion, Queue, Workflow
from exceptions_app.policy.evaluation import policy_compile, policy_evaluate

POLICIES = Path(__file__).resolve().parent.parent / "policies"
WORKFLOWS = [
    "billing.invoice_adjustment",
    "documents.field_extraction",
    "operations.exception_handling",
    "reconciliation.ledger_match",
    "routing.shipment_allocation",
]


def _document(workflow: str) -> dict:
    return yaml.safe_load((POLICIES / f"{workflow}.yaml").read_text())


def _apply(*args: str) -> str:
    out = io.StringIO()
    call_command("apply_policies", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _versions() -> dict[str, int]:
    return dict(Workflow.objects.values_list("name", "current_policy__version"))


@pytest.mark.django_db
def test_apply_publishes_v1_of_every_workflow_and_creates_every_named_queue():
    output = _apply(str(POLICIES))

    assert _versions() == dict.fromkeys(WORKFLOWS, 1)
    assert PolicyVersion.objects.count() == len(WORKFLOWS)
    assert output.count("published v1") == len(WORKFLOWS)
    named = set()
    for workflow in WORKFLOWS:
        document = _document(workflow)
        named |= {document["queue"]} | {rule["queue"] for rule in document["rules"] if "queue" in rule}
    assert {"routing-compliance", "payments-security", "reconciliation-senior", "operations-oncall"} <= named
    assert named <= set(Queue.objects.values_list("name", flat=True))


@pytest.mark.django_db
def test_apply_again_publishes_nothing_new():
    _apply(str(POLICIES))
    output = _apply(str(POLICIES))

    assert _versions() == dict.fromkeys(WORKFLOWS, 1)
    assert PolicyVersion.objects.count() == len(WORKFLOWS)
    assert output.count("unchanged (v1)") == len(WORKFLOWS)
    assert "published" not in output


@pytest.mark.django_db
def test_changing_one_file_publishes_v2_of_that_workflow_only(tmp_path):
    _apply(str(POLICIES))
    folder = shutil.copytree(POLICIES, tmp_path / "policies")
    document = _document("routing.shipment_allocation")
    document["sla_seconds"] = 1200
    (folder / "routing.shipment_allocation.yaml").write_text(yaml.safe_dump(document))

    output = _apply(str(folder))

    assert _versions() == {**dict.fromkeys(WORKFLOWS, 1), "routing.shipment_allocation": 2}
    assert Workflow.objects.get(name="routing.shipment_allocation").current_policy.document["sla_seconds"] == 1200
    assert "routing.shipment_allocation: published v2" in output
    assert output.count("unchanged (v1)") == len(WORKFLOWS) - 1


@pytest.mark.django_db
def test_check_on_the_shipped_folder_passes_and_writes_nothing():
    output = _apply("--check", str(POLICIES))

    assert f"{len(WORKFLOWS)} policy files are valid" in output
    assert not Workflow.objects.exists()
    assert not PolicyVersion.objects.exists()
    assert not Queue.objects.filter(name__in=["billing", "routing", "operations-oncall"]).exists()


def _with_rule_when(document, when):
    document["rules"][0]["when"] = when


BROKEN = {
    "invalid_cel": (lambda d: _with_rule_when(d, "output.amount >>> 3"), ["rule large_adjustment:", "invalid CEL"]),
    "invalid_output_schema": (
        lambda d: d.update(output_schema={"type": "nonsense"}),
        ["output_schema.type: invalid JSON Schema"],
    ),
    "yaml_syntax": ("workflow: [unclosed\nqueue: billing\n", ["not valid YAML"]),
    "duplicate_rule_code": (
        lambda d: d["rules"].append(dict(d["rules"][0])),
        ["rule large_adjustment:", "duplicate rule code 'large_adjustment'"],
    ),
    "auto_reject_not_below_auto_approve": (
        lambda d: d["thresholds"].update(auto_reject=0.95),
        ["thresholds.auto_reject:", "must be below thresholds.auto_approve"],
    ),
    "missing_required_key": (lambda d: d.pop("queue"), ["'queue' is a required property"]),
}


@pytest.mark.django_db
@pytest.mark.parametrize("check", [True, False], ids=["check", "apply"])
@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_fails_naming_file_and_reason_and_nothing_is_written(tmp_path, case, check):
    breaker, expected = BROKEN[case]
    folder = shutil.copytree(POLICIES, tmp_path / "policies")
    if isinstance(breaker, str):
        text = breaker
    else:
        document = {**_document("billing.invoice_adjustment"), "workflow": "broken.workflow"}
        breaker(document)
        text = yaml.safe_dump(document)
    (folder / "broken.yaml").write_text(text)
    err = io.StringIO()

    refused = f"1 of {len(WORKFLOWS) + 1} policy files are invalid; nothing was published"
    with pytest.raises(CommandError, match=refused):
        call_command("apply_policies", *(["--check"] if check else []), str(folder), stdout=io.StringIO(), stderr=err)

    assert err.getvalue().startswith(f"{folder / 'broken.yaml'}:")
    assert ".invoice_adjustment.yaml" not in err.getvalue()  # only the broken file is named
    for fragment in expected:
        assert fragment in err.getvalue()
    assert not Workflow.objects.exists()
    assert not PolicyVersion.objects.exists()


# For each workflow: a case that should proceed (high confidence, everything consistent). Each rule case below
# overrides keys of the variables it names (None drops a key), and must fire that one rule and nothing else.
# fmt: off
GOOD = {
    "billing.invoice_adjustment": {
        "output": {"invoice_id": "INV-1", "type": "credit", "amount": 120.0, "currency": "EUR"},
        "input_data": {"invoice_total": 480.0, "currency": "EUR"},
    },
    "routing.shipment_allocation": {
        "output": {"shipment_id": "SH-1", "carrier": "DHLX", "service_level": "standard", "warehouse": "WH-ROT",
                   "route": "ROT-MUC", "quoted_cost": 410.0, "currency": "EUR", "estimated_delivery": "2025-03-04"},
        "input_data": {"estimated_cost": 380.0, "promised_delivery": "2025-03-05", "hazardous": True, "pallets": 6},
        "context": {"hazmat_certified_carriers": ["DHLX", "KNAG"], "warehouse_free_pallets": {"WH-ROT": 40}},
    },
    "reconciliation.ledger_match": {
        "output": {"transaction_id": "TX-1", "matched_total": 1500.0, "currency": "EUR",
                   "entries": [{"entry_id": "AR-9", "amount": 1500.0, "date": "2025-03-01", "counterparty": "ACME"}]},
        "input_data": {"amount": 1500.2, "currency": "EUR", "booking_date": "2025-03-03", "counterparty_name": "ACME"},
        "context": {"matched_entry_ids": ["AR-7"]},
    },
    "documents.field_extraction": {
        "output": {"document_type": "invoice", "supplier_name": "Acme GmbH", "supplier_vat_id": "DE123456789",
                   "invoice_number": "A-1001", "invoice_date": "2025-03-01", "currency": "EUR", "subtotal": 59.97,
                   "tax_total": 11.39, "total": 71.36, "iban": "DE89370400440532013000",
                   "lines": [{"description": "Toner", "quantity": 3, "unit_price": 19.99, "amount": 59.97}]},
        "context": {"mandatory_fields": ["supplier_vat_id", "iban"], "field_confidence": {"total": 0.97, "iban": 0.93},
                    "supplier_iban": "DE89370400440532013000", "seen_invoice_numbers": ["A-0999"]},
    },
    "operations.exception_handling": {
        "output": {"run_id": "R-1", "step": "charge", "error_class": "timeout", "attempts": 1,
                   "proposed_action": "retry"},
        "input_data": {"signals": [{"source": "psp", "status": "pending"}, {"source": "bank", "status": "pending"}]},
        "context": {"irreversible_tools": ["send_payment"]},
        "value_at_risk": 900.0,
    },
}
ENTRY = GOOD["reconciliation.ledger_match"]["output"]["entries"][0]
TONER = GOOD["documents.field_extraction"]["output"]["lines"][0]
FIRING = {
    "billing.invoice_adjustment": [
        ("large_adjustment", {"output": {"type": "refund", "amount": 12000.0}}),
        ("credit_exceeds_invoice", {"output": {"amount": 500.0}}),
        ("currency_mismatch", {"input_data": {"currency": "USD"}}),
        ("lines_do_not_add_up", {"output": {"type": "rerate", "lines": [{"description": "fee", "amount": -5.0}]}}),
    ],
    "routing.shipment_allocation": [
        ("cost_far_over_estimate", {"output": {"quoted_cost": 600.0}}),
        ("hazmat_carrier_not_certified", {"output": {"carrier": "UPSN"}}),
        ("hazmat_carrier_not_certified", {"context": {"hazmat_certified_carriers": None}}),
        ("delivery_after_promise", {"output": {"estimated_delivery": "2025-03-06"}}),
        ("warehouse_capacity_exceeded", {"output": {"warehouse": "WH-HAM"}}),
        ("warehouse_capacity_exceeded", {"input_data": {"pallets": 41}}),
    ],
    "reconciliation.ledger_match": [
        ("amount_outside_tolerance", {"output": {"matched_total": 1400.0}}),
        ("amount_outside_tolerance", {"context": {"amount_tolerance": 0.1}}),
        ("many_to_one_match", {"output": {"entries": [{**ENTRY, "amount": 1000.0},
                                                      {**ENTRY, "entry_id": "AR-10", "amount": 500.0}]}}),
        ("date_gap_too_large", {"output": {"entries": [{**ENTRY, "date": "2025-02-20"}]}}),
        ("counterparty_mismatch", {"output": {"entries": [{**ENTRY, "counterparty": "ACME TRADING"}]}}),
        ("entry_already_matched", {"output": {"entries": [{**ENTRY, "entry_id": "AR-7"}]}}),
    ],
    "documents.field_extraction": [
        ("missing_mandatory_field", {"output": {"supplier_vat_id": None}}),
        ("totals_do_not_add_up", {"output": {"total": 81.36}}),
        ("totals_do_not_add_up", {"output": {
            "subtotal": 69.97, "total": 81.36, "lines": [{**TONER, "amount": 69.97}]}}),
        ("low_field_confidence", {"context": {"field_confidence": {"total": 0.97, "iban": 0.55}}}),
        ("iban_changed", {"output": {"iban": "GB29NWBK60161331926819"}}),
        ("iban_changed", {"context": {"supplier_iban": None}}),
        ("duplicate_invoice_number", {"output": {"invoice_number": "A-0999"}}),
    ],
    "operations.exception_handling": [
        ("retries_exhausted", {"output": {"attempts": 3}}),
        ("irreversible_action", {"output": {"proposed_action": "compensate", "next_tool": "send_payment"}}),
        ("irreversible_action", {"output": {"irreversible": True}}),
        ("conflicting_signals", {"input_data": {"signals": [{"source": "psp", "status": "settled"},
                                                            {"source": "bank", "status": "pending"}]}}),
        ("skipping_unexplained_failure", {"output": {"error_class": "permission", "proposed_action": "skip"}}),
        ("high_value_at_risk", {"value_at_risk": 30000.0}),
    ],
}
# fmt: on
FIRING_CASES = [(workflow, code, changes) for workflow, cases in FIRING.items() for code, changes in cases]


def _override(case: dict, changes: dict) -> dict:
    case = copy.deepcopy(case)
    for name, value in changes.items():
        if isinstance(value, dict):
            merged = {**case.get(name, {}), **value}
            value = {key: item for key, item in merged.items() if item is not None}
        case[name] = value
    return case


def _evaluate(workflow: str, case: dict, confidence: float = 0.99):
    policy = policy_compile(-1000 - WORKFLOWS.index(workflow), _document(workflow))
    return policy, policy_evaluate(policy, confidence=confidence, **case)


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_a_consistent_confident_output_proceeds(workflow):
    policy, evaluation = _evaluate(workflow, GOOD[workflow])
    assert policy.output_validator.is_valid(GOOD[workflow]["output"])
    assert (evaluation.verdict, evaluation.reasons) == ("proceed", [])
    assert _evaluate(workflow, GOOD[workflow], confidence=policy.auto_approve - 0.01)[1].verdict == "hold"


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_every_rule_has_a_firing_case(workflow):
    assert {code for code, _ in FIRING[workflow]} == {rule["code"] for rule in _document(workflow)["rules"]}


@pytest.mark.parametrize(
    ("workflow", "code", "changes"), FIRING_CASES, ids=[f"{w}-{c}-{i}" for i, (w, c, _) in enumerate(FIRING_CASES)]
)
def test_the_crafted_case_fires_exactly_its_rule_and_routes_to_its_queue(workflow, code, changes):
    case = _override(GOOD[workflow], changes)
    policy, evaluation = _evaluate(workflow, case)
    rule = next(rule for rule in policy.rules if rule.code == code)

    assert policy.output_validator.is_valid(case["output"]), "a rule case must stay inside the output schema"
    assert evaluation.verdict == "hold"
    assert evaluation.reasons == [{"code": code, "severity": rule.severity}]  # fired, not failed to evaluate
    assert evaluation.queue == (rule.queue or policy.default_queue)
