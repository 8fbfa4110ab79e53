"""The domain rules, without a database."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from rest_framework.fields import DateTimeField

from exceptions_app import rules


@pytest.mark.parametrize("code", ["a", "wrong_amount", "policy.amount-limit", "0", "x" * 64])
def test_well_formed_reason_codes_pass(code):
    assert rules.reason_code_problem(code) is None
    rules.reason_code_validator(code)


@pytest.mark.parametrize(
    "code", ["", "Wrong", "-dash-first", ".dot-first", "has space", "x" * 65, "ünï", "tab\t", "end\n", None, 7]
)
def test_malformed_reason_codes_say_why(code):
    assert rules.reason_code_problem(code)


def test_the_validator_raises_a_form_error():
    with pytest.raises(ValidationError):
        rules.reason_code_validator("Wrong")


def test_timestamps_are_written_in_utc_with_a_z_as_drf_writes_them():
    moment = datetime(2026, 3, 1, 12, 30, 5, 250_000, tzinfo=UTC)

    assert rules.iso_timestamp(moment) == "2026-03-01T12:30:05.250000Z"
    assert rules.iso_timestamp(moment) == DateTimeField().to_representation(moment)
    assert rules.iso_timestamp(None) is None


def test_a_rejection_needs_a_code_and_other_actions_do_not():
    assert rules.resolution_reason_problem(action="reject", reason_code="") == "a reason code is required to reject"
    assert rules.resolution_reason_problem(action="approve", reason_code="") is None
    assert rules.resolution_reason_problem(action="approve", reason_code="Bad") == rules.REASON_CODE_HELP
    assert rules.resolution_reason_problem(action="reject", reason_code="duplicate") is None


@pytest.mark.parametrize(
    ("age", "near_percent", "stage"),
    [
        (None, 25, rules.SLA_OK),
        (0, 25, rules.SLA_OK),
        (74.9, 25, rules.SLA_OK),
        (75, 25, rules.SLA_NEAR),
        (99.9, 25, rules.SLA_NEAR),
        (100, 25, rules.SLA_BREACHED),
        (500, 25, rules.SLA_BREACHED),
        (49, 50, rules.SLA_OK),
        (50, 50, rules.SLA_NEAR),
        (1, 100, rules.SLA_NEAR),
    ],
)
def test_the_sla_stage_of_an_age(age, near_percent, stage):
    assert rules.sla_stage(age, 100, near_percent=near_percent) == stage


def test_the_sla_stage_follows_the_setting(settings):
    settings.TOLLGATE_SLA_NEAR_FRACTION_PERCENT = 50
    assert rules.sla_stage(60, 100) == rules.SLA_NEAR
    settings.TOLLGATE_SLA_NEAR_FRACTION_PERCENT = 25
    assert rules.sla_stage(60, 100) == rules.SLA_OK


def test_near_sla_time_and_stage_agree():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    near_at = rules.sla_near_at(start=start, sla_seconds=3600, near_percent=25)
    assert near_at == start + timedelta(seconds=2700)
    assert rules.sla_stage((near_at - start).total_seconds(), 3600, near_percent=25) == rules.SLA_NEAR


def test_risk_is_the_share_of_the_sla_used():
    assert rules.risk(None, 3600) == 0.0
    assert rules.risk(1800, 3600) == 0.5
    assert rules.risk(7200, 3600) == 2.0
    assert rules.risk(10, 0) == 0.0


def test_supervisor_is_a_role_not_staff():
    assert rules.principal_is_supervisor(SimpleNamespace(role="supervisor"))
    assert not rules.principal_is_supervisor(SimpleNamespace(role="operator"))
    assert not rules.principal_is_supervisor(None)
    anonymous = SimpleNamespace(is_authenticated=False)
    assert not rules.person_is_supervisor(anonymous)
    assert not rules.person_is_supervisor(None)
    staff = SimpleNamespace(is_authenticated=True, is_staff=True, principal=SimpleNamespace(role="operator"))
    assert not rules.person_is_supervisor(staff)
    assert rules.person_is_supervisor(
        SimpleNamespace(is_authenticated=True, principal=SimpleNamespace(role="supervisor"))
    )
