"""The copies of a rule that disagreed now ask exceptions_app.rules: each test here failed on the copy."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from exceptions_app.errors import InvalidInput
from exceptions_app.models import ExceptionItem, ItemStatus
from exceptions_app.services.items import item_claim, item_resolve
from exceptions_app.services.snapshots import snapshots_take
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db

BILLING_SLA = 3600


def signed_in(name: str, role: str, teams=("billing-team",)) -> Client:
    principal = principal_ensure(name=name, role=role, teams=list(teams))
    client = Client()
    client.force_login(principal.user)
    client.principal = principal
    return client


def test_the_console_accepts_a_reason_code_with_dots_as_the_api_does(agent_client, billing_queues):
    # The console's SlugField refused dots, which the API and the help text allow.
    olga = signed_in("olga", "operator")
    item_id = hold(agent_client)
    olga.post(f"/items/{item_id}/claim")

    # A typed code (the policy's reject_reasons are offered beside it, issue 18).
    olga.post(f"/items/{item_id}/reject", {"reason_text": "policy.amount-limit"})

    item = ExceptionItem.objects.get(pk=item_id)
    assert (item.status, item.reason_code) == (ItemStatus.RESOLVED, "policy.amount-limit")


def test_the_console_refuses_capitals_in_a_reason_code_as_the_api_does(agent_client, billing_queues):
    # The SlugField let "Wrong_Amount" through; the API refuses it.
    olga = signed_in("olga", "operator")
    item_id = hold(agent_client)
    olga.post(f"/items/{item_id}/claim")

    response = olga.post(f"/items/{item_id}/reject", {"reason_text": "Wrong_Amount"})

    assert response.status_code == 400
    assert b"lower-case letters, digits" in response.content  # rules.REASON_CODE_HELP, next to the field
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED


def test_bulk_reject_refuses_a_malformed_reason_code(agent_client, billing_queues):
    olga = signed_in("olga", "operator")
    item_id = hold(agent_client)

    response = olga.post("/items/bulk", {"items": [item_id], "action": "reject", "reason_code": "Wrong_Amount"})

    assert response.status_code == 400
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.OPEN


@pytest.mark.parametrize("code", ["Bad Code", "x" * 65, "-starts-with-dash", "ünïcode"])
def test_the_service_refuses_a_malformed_reason_code(agent_client, billing_queues, code):
    # The service only checked that a rejection's code was not empty.
    olga = principal_ensure(name="olga", role="operator", teams=["billing-team"])
    item_id = hold(agent_client)
    item_claim(item_id=item_id, principal=olga)

    with pytest.raises(InvalidInput) as refused:
        item_resolve(item_id=item_id, principal=olga, action="reject", reason_code=code)

    assert refused.value.fields[0]["path"] == "reason_code"
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED


def _age_oldest(item_id: int, seconds: float) -> None:
    ExceptionItem.objects.filter(pk=item_id).update(queued_at=timezone.now() - timedelta(seconds=seconds))


def test_the_queue_list_marks_near_sla_by_the_setting(agent_client, billing_queues, settings):
    # The queue list hard-coded 0.75 beside TOLLGATE_SLA_NEAR_FRACTION_PERCENT.
    settings.TOLLGATE_SLA_NEAR_FRACTION_PERCENT = 50
    olga = signed_in("olga", "operator")
    _age_oldest(hold(agent_client), 0.6 * BILLING_SLA)

    page = olga.get("/")

    row = re.search(rb'<tr[^>]*data-testid="queue-billing"', page.content).group(0)
    assert b"risk-near" in row


def test_the_queue_list_is_past_sla_from_the_deadline_on(agent_client, billing_queues):
    # The copy used ">" where the sweep counts an item past due from due_at <= now.
    olga = signed_in("olga", "operator")
    _age_oldest(hold(agent_client), BILLING_SLA + 1)

    row = re.search(rb'<tr[^>]*data-testid="queue-billing"', olga.get("/").content).group(0)

    assert b"risk-breached" in row


def test_the_dashboard_marks_near_sla_by_the_setting(agent_client, billing_queues, settings):
    # The dashboard template hard-coded 0.75 too.
    settings.TOLLGATE_SLA_NEAR_FRACTION_PERCENT = 50
    sam = signed_in("sam", "supervisor")
    _age_oldest(hold(agent_client), 0.6 * BILLING_SLA)
    snapshots_take()

    page = sam.get("/dashboard")

    row = re.search(rb'<tr[^>]*data-testid="dash-billing"[^>]*>', page.content).group(0)
    assert b"risk-near" in row


def test_the_navigation_offers_the_dashboard_to_supervisors_not_to_staff(agent_client, billing_queues):
    # The navigation asked is_staff; the dashboard asks the role.
    staff_operator = signed_in("olga", "operator")
    staff_operator.principal.user.is_staff = True
    staff_operator.principal.user.save(update_fields=["is_staff"])
    supervisor = signed_in("sam", "supervisor")
    supervisor.principal.user.is_staff = False
    supervisor.principal.user.save(update_fields=["is_staff"])

    assert b'href="/dashboard"' not in staff_operator.get("/").content
    assert b'href="/dashboard"' in supervisor.get("/").content
    assert supervisor.get("/dashboard").status_code == 200
