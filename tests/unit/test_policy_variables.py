"""The gate hands CEL only the variables a policy's rules read; every rule still sees what it reads."""

import pytest

from exceptions_app.policy.evaluation import policy_build, policy_evaluate

SCHEMA = {"type": "object"}


def _policy(*whens: str):
    return policy_build(
        {
            "workflow": "unit.test",
            "thresholds": {"auto_approve": 0.5},
            "queue": "unit",
            "sla_seconds": 60,
            "output_schema": SCHEMA,
            "rules": [{"code": f"r{n}", "when": when, "severity": "low"} for n, when in enumerate(whens)],
        }
    )


@pytest.mark.parametrize(
    ("when", "variables"),
    [
        ("output.amount > 1.0", {"output"}),
        ("has(input.total) && input.total > 1.0", {"input"}),
        ("context.tier == 'gold'", {"context"}),
        ("confidence < 0.99", {"confidence"}),
        ("value_at_risk > 10.0", {"value_at_risk"}),
        ("output.lines.exists(line, line.amount < 0.0)", {"output"}),
    ],
)
def test_each_rule_fires_on_the_variable_it_reads(when, variables):
    policy = _policy(when)

    evaluation = policy_evaluate(
        policy,
        output={"amount": 5.0, "lines": [{"amount": -1.0}]},
        confidence=0.9,
        input_data={"total": 3.0},
        context={"tier": "gold"},
        value_at_risk=50.0,
    )

    assert policy.variables == variables
    assert [reason["code"] for reason in evaluation.reasons] == ["r0"]


def test_the_union_of_every_rules_variables_is_handed_over():
    policy = _policy("output.amount > 1.0", "value_at_risk > 10.0 && context.tier == 'gold'")

    assert policy.variables == {"output", "value_at_risk", "context"}
    evaluation = policy_evaluate(
        policy, output={"amount": 5.0}, confidence=0.9, context={"tier": "gold"}, value_at_risk=11.0
    )
    assert [reason["code"] for reason in evaluation.reasons] == ["r0", "r1"]


def test_a_policy_without_rules_goes_by_its_thresholds():
    policy = _policy()

    assert policy_evaluate(policy, output={}, confidence=0.9).verdict == "proceed"
    assert policy_evaluate(policy, output={}, confidence=0.1).verdict == "hold"


def test_missing_input_and_context_read_as_empty_maps():
    policy = _policy("has(input.total)", "has(context.tier)")

    evaluation = policy_evaluate(policy, output={}, confidence=0.9)

    assert evaluation.verdict == "proceed"
