"""Login throttling (django-axes): wrong passwords for one username from one address lock that pair
out with a clear 429 page; the right password is refused until the cool-off ends; others are not
affected. The browser test drives the real login form."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import PASSWORD, UserFactory

LOGIN = "/accounts/login/"
ATTACKER = "203.0.113.7"


def sign_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.fixture
def people(db):
    return UserFactory(username="alice"), UserFactory(username="bob")


@pytest.fixture
def attacker() -> Client:
    return Client(REMOTE_ADDR=ATTACKER)


def lock_out(client: Client, username: str):
    """Fail exactly the allowed number of times; returns the last answer."""
    answers = [sign_in(client, username, f"guess-{number}") for number in range(settings.AXES_FAILURE_LIMIT)]
    assert [answer.status_code for answer in answers[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    return answers[-1]


def test_repeated_wrong_passwords_lock_the_account_from_that_address(people, attacker):
    last = lock_out(attacker, "alice")

    assert last.status_code == 429
    text = last.content.decode()
    assert "Too many failed sign-ins" in text
    assert f"After {settings.AXES_FAILURE_LIMIT} wrong passwords" in text
    assert "15 minutes" in text


def test_the_right_password_is_refused_until_the_cool_off_ends(people, attacker):
    lock_out(attacker, "alice")

    refused = sign_in(attacker, "alice", PASSWORD)
    assert refused.status_code == 429
    assert not signed_in(refused)

    # Age the lockout past its cool-off instead of sleeping through it.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    accepted = sign_in(attacker, "alice", PASSWORD)
    assert signed_in(accepted)


def test_a_lockout_does_not_touch_other_users_or_other_addresses(people, attacker):
    lock_out(attacker, "alice")

    assert signed_in(sign_in(attacker, "bob", PASSWORD))
    assert signed_in(sign_in(Client(REMOTE_ADDR="198.51.100.20"), "alice", PASSWORD))


def test_a_successful_sign_in_resets_the_failure_count(people, attacker):
    for number in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(attacker, "alice", f"guess-{number}")
    assert signed_in(sign_in(attacker, "alice", PASSWORD))

    answer = sign_in(Client(REMOTE_ADDR=ATTACKER), "alice", "one-more-guess")

    assert answer.status_code == 200


def test_the_admin_login_is_throttled_too(people, attacker):
    for number in range(settings.AXES_FAILURE_LIMIT):
        answer = attacker.post("/admin/login/", {"username": "alice", "password": f"guess-{number}"})

    assert answer.status_code == 429


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_locked_out_person_sees_why_in_the_browser(live_server, page):
    UserFactory(username="alice")
    page.goto(live_server.url + LOGIN)

    for number in range(settings.AXES_FAILURE_LIMIT):
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(f"guess-{number}")
        page.get_by_role("button", name="Sign in").click()
        if number < settings.AXES_FAILURE_LIMIT - 1:
            expect(page.get_by_role("alert")).to_contain_text("didn't match")

    expect(page.get_by_test_id("locked-out")).to_contain_text("wrong passwords")
    expect(page.get_by_role("heading", name="Too many failed sign-ins")).to_be_visible()
    page.get_by_role("link", name="Back to sign-in").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("locked-out")).to_be_visible()
