"""The People page and the console in Chromium: a superuser made by createsuperuser opens the
console as a supervisor, adds an operator who then signs in, and a user without a role reads why."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from exceptions_app.models import AuditEvent, Queue, Team
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NEW_PASSWORD = "correct horse battery staple"


def _sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_superuser_opens_the_console_and_adds_an_operator_who_can_then_sign_in(live_server, page, browser):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    Queue.objects.create(name="billing", sla_seconds=600).teams.add(Team.objects.create(name="finance"))

    _sign_in(page, live_server.url, "root", PASSWORD)
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    expect(page.get_by_test_id("queue-billing")).to_be_visible()  # a supervisor sees every queue
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()

    expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible()
    expect(page.get_by_test_id("person-root")).to_contain_text("Supervisor")
    form = page.get_by_test_id("add-person")
    form.get_by_label("Username").fill("nora")
    form.get_by_label("Role").select_option("operator")
    form.get_by_label("finance").check()
    form.get_by_label(re.compile(r"^Password:?$")).fill(NEW_PASSWORD)
    form.get_by_label("Password again").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Add person").click()

    expect(page.get_by_role("status")).to_contain_text("Added nora as operator")
    expect(page.get_by_test_id("person-nora")).to_contain_text("billing")
    assert AuditEvent.objects.filter(action="person_created", payload__person="nora", actor__username="root").exists()

    page.get_by_role("link", name="nora").click()
    page.get_by_role("button", name="Deactivate nora").click()
    expect(page.get_by_test_id("person-summary")).to_contain_text("deactivated")
    page.get_by_role("button", name="Reactivate nora").click()
    expect(page.get_by_test_id("person-summary")).to_contain_text("active")
    expect(page.get_by_test_id("history")).to_contain_text("person_reactivated")

    operator = browser.new_context().new_page()
    _sign_in(operator, live_server.url, "nora", NEW_PASSWORD)
    expect(operator.get_by_test_id("queue-billing")).to_be_visible()
    expect(operator.get_by_role("link", name="People")).to_have_count(0)
    operator.goto(live_server.url + "/people")
    expect(operator.get_by_test_id("forbidden-reason")).to_contain_text("is for supervisors")
    operator.context.close()


def test_a_user_without_a_role_reads_why_and_what_to_do(live_server, page):
    get_user_model().objects.create_user("newcomer", password=PASSWORD)

    _sign_in(page, live_server.url, "newcomer", PASSWORD)

    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()
    expect(page.get_by_test_id("forbidden-reason")).to_contain_text("has no role in Tollgate yet")
    expect(page.get_by_test_id("forbidden-reason")).to_contain_text("People page")
    expect(page.get_by_role("button", name="Sign in as someone else")).to_be_visible()
    assert re.search(r"/$", page.url)
