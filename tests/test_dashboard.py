"""The supervisors' dashboard, its exports and JSON, and supervisor actions on items."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from exceptions_app.models import AuditEvent, Delivery, DeliveryStatus, ExceptionItem
from exceptions_app.services.snapshots import snapshots_take
from exceptions_app.services.tallies import tallies_advance
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import dead_letter, hold

PASSWORD = "dashboard-test-password"


def person(name: str, role: str, teams=("billing-team",)) -> Client:
    principal = principal_ensure(name=name, role=role, teams=list(teams))
    principal.user.set_password(PASSWORD)
    principal.user.save()
    client = Client()
    client.force_login(principal.user)
    return client


@pytest.mark.django_db
def test_supervisors_see_the_dashboard_and_operators_do_not(agent_client, billing_queues):
    hold(agent_client)
    snapshots_take()
    tallies_advance()

    supervisor = person("sam", "supervisor")
    operator = person("olga", "operator")

    page = supervisor.get("/dashboard")
    assert page.status_code == 200
    assert b"dash-billing" in page.content
    assert operator.get("/dashboard").status_code == 403
    assert operator.get("/dashboard/export/queues.csv").status_code == 403


@pytest.mark.django_db
def test_every_table_exports_as_csv_and_formulas_are_defused(agent_client, billing_queues):
    hold(agent_client)
    supervisor = person("sam", "supervisor")
    hostile = principal_ensure(name="=cmd|calc", role="operator", teams=["billing-team"])
    ExceptionItem.objects.update(
        status="claimed", claimed_by=hostile.user, claim_expires_at=timezone.now() + timedelta(minutes=5)
    )

    for table in ("queues", "workflows", "latency", "operators"):
        response = supervisor.get(f"/dashboard/export/{table}.csv")
        assert response.status_code == 200, table
        assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(supervisor.get("/dashboard/export/operators.csv").content.decode())))
    assert rows[0]["operator"] == "'=cmd|calc"
    assert supervisor.get("/dashboard/export/nonsense.csv").status_code == 404


@pytest.mark.django_db
def test_the_same_figures_are_served_as_json(agent_client, supervisor_client, billing_queues):
    hold(agent_client)
    tallies_advance()

    queues = supervisor_client.get("/api/v1/stats/queues").json()
    workflows = supervisor_client.get("/api/v1/stats/workflows").json()

    assert {row["queue"]: row["depth"] for row in queues["rows"]}["billing"] == 1
    assert workflows["rows"][0]["review_rate"] == 1.0
    for table in ("latency", "operators"):
        assert supervisor_client.get(f"/api/v1/stats/{table}").status_code == 200


@pytest.mark.django_db
def test_operators_and_agents_cannot_read_stats(agent_client, operator_client):
    assert operator_client.get("/api/v1/stats/queues").status_code == 403
    assert agent_client.get("/api/v1/stats/queues").status_code == 403


@pytest.mark.django_db
def test_dead_letters_are_redelivered_from_the_dashboard_and_audited(agent_client, operator_client, billing_queues):
    item_id = dead_letter(agent_client, operator_client)
    supervisor = person("sam", "supervisor")
    delivery = Delivery.objects.get(item_id=item_id)

    assert delivery.public_id.encode() in supervisor.get("/dashboard").content
    supervisor.post("/dashboard/dead-letters/redeliver", {"deliveries": [delivery.public_id]})

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert AuditEvent.objects.filter(item_id=item_id, action="redelivery_requested", actor__username="sam").exists()


@pytest.mark.django_db
def test_supervisors_reassign_and_reprioritise_items_with_audit(agent_client, billing_queues):
    item_id = hold(agent_client)
    supervisor = person("sam", "supervisor")
    person("olga", "operator")
    operator = person("otto", "operator")

    supervisor.post(f"/items/{item_id}/reassign", {"to": "olga"})
    supervisor.post(f"/items/{item_id}/reprioritise", {"priority": 9000, "note": "CFO asked"})
    operator.post(f"/items/{item_id}/reprioritise", {"priority": 1})

    item = ExceptionItem.objects.get(pk=item_id)
    assert (item.status, item.claimed_by.username, item.priority) == ("claimed", "olga", 9000)
    assert AuditEvent.objects.get(item_id=item_id, action="reassigned").payload == {"from": None, "to": "olga"}
    assert AuditEvent.objects.get(item_id=item_id, action="reprioritised").payload["to"] == 9000


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_updates_live_when_an_item_arrives(live_server, page, agent_client, billing_queues):
    hold(agent_client)
    snapshots_take()
    person("sam", "supervisor")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Dashboard").click()
    depth = page.get_by_test_id("dash-billing").get_by_test_id("dash-depth")
    expect(depth).to_have_text("1")

    hold(agent_client)

    expect(depth).to_have_text("2", timeout=12_000)
    expect(page.get_by_role("heading", name=re.compile("Queues, riskiest first"))).to_be_visible()
    page.screenshot(path="docs/screenshots/dashboard.png", full_page=True)
