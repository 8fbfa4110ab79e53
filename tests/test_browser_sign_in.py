import re

import pytest
from playwright.sync_api import expect

from exceptions_app.services.tokens import principal_ensure
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_signs_in_through_the_login_page_and_sees_home(live_server, page):
    UserFactory(username="alice")
    principal_ensure(name="alice", role="operator", teams=["finance"])

    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    expect(page.get_by_test_id("heartbeat")).to_contain_text("Heartbeat")


def test_wrong_password_shows_an_error_and_stays_on_login(live_server, page):
    UserFactory(username="alice")

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
