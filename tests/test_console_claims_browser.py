"""Issue 18, findings 1 to 3 and 6 in Chromium: the claim an operator makes is the one they chose,
no decision is lost when the session expires, and every claim they hold is in sight."""

import re

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from exceptions_app.models import ExceptionItem, ItemStatus
from tests.browser_helpers import PASSWORD, person, sign_in
from tests.fixtures.gate import hold, invoice_output

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SENIOR = {"output": invoice_output(amount=50_000.0)}  # large_adjustment: held in billing-senior


def refresh_queue_table(page) -> None:
    """What the five-second poll does (the same request and swap), without waiting for it."""
    with page.expect_response(re.compile(r"/queues/table$")):
        page.evaluate("htmx.ajax('GET', '/queues/table', {target: '#queue-table', swap: 'outerHTML'})")
    page.wait_for_timeout(150)  # the swap settles after the response


def test_finding_1_the_selected_queue_survives_the_live_refresh(live_server, page, agent_client, billing_queues):
    person("olga")
    hold(agent_client)
    senior_item = hold(agent_client, **SENIOR)
    sign_in(page, live_server.url, "olga")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.get_by_test_id("queue-billing-senior")).to_be_focused()

    refresh_queue_table(page)

    expect(page.get_by_test_id("queue-billing-senior")).to_be_focused()
    page.keyboard.press("n")
    expect(page.get_by_role("heading", name=re.compile(f"Item {senior_item}"))).to_be_visible()
    assert ExceptionItem.objects.filter(status=ItemStatus.CLAIMED).count() == 1


def test_finding_2_next_on_an_empty_queue_says_so_and_claims_nothing(live_server, page, agent_client, billing_queues):
    person("olga")
    hold(agent_client)  # billing has an item; billing-senior has none
    sign_in(page, live_server.url, "olga")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.get_by_test_id("queue-billing-senior")).to_be_focused()

    page.keyboard.press("n")

    expect(page.locator("#announce")).to_have_text("The billing-senior queue is empty: nothing was claimed.")
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    assert not ExceptionItem.objects.filter(status=ItemStatus.CLAIMED).exists()
    # Enter on the row is Next too, with the same guard.
    page.keyboard.press("Enter")
    assert not ExceptionItem.objects.filter(status=ItemStatus.CLAIMED).exists()


def test_finding_3_a_decision_sent_after_the_session_expired_is_kept_and_sent_after_sign_in(
    live_server, page, agent_client, billing_queues
):
    person("olga")
    item_id = hold(agent_client)
    sign_in(page, live_server.url, "olga")
    page.get_by_role("button", name="Next item from billing", exact=True).click()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    Session.objects.all().delete()  # the session expires while the item is open

    page.keyboard.press("a")

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/items/{item_id}")
    expect(page.get_by_test_id("pending-decision")).to_contain_text("approve")
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED  # nothing decided behind her back
    send = page.get_by_role("button", name="Send the approve")
    expect(send).to_be_focused()

    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    assert ExceptionItem.objects.get(pk=item_id).resolution == "approve"


def test_finding_6_my_claims_lists_every_claim_with_resume_and_release(live_server, page, agent_client, billing_queues):
    person("olga")
    first = hold(agent_client)
    hold(agent_client)
    senior_item = hold(agent_client, **SENIOR)
    sign_in(page, live_server.url, "olga")
    page.get_by_role("button", name="Next item from billing", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(f"Item {first}"))).to_be_visible()
    page.get_by_role("link", name="Queues").click()
    # Next in a queue where she already holds an item opens that item rather than leasing another.
    page.get_by_role("button", name="Next item from billing", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(f"Item {first}"))).to_be_visible()
    page.get_by_role("link", name="Queues").click()
    page.get_by_role("button", name="Next item from billing-senior", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(f"Item {senior_item}"))).to_be_visible()
    assert set(ExceptionItem.objects.filter(status=ItemStatus.CLAIMED).values_list("pk", flat=True)) == {
        first,
        senior_item,
    }
    # The item page lists the other claim, with Resume.
    expect(page.get_by_test_id(f"my-claim-{first}")).to_be_visible()

    page.get_by_role("link", name="Queues").click()
    claims = page.get_by_test_id("my-claims")
    expect(claims.get_by_test_id(f"my-claim-{first}")).to_be_visible()
    expect(claims.get_by_test_id(f"my-claim-{senior_item}")).to_be_visible()
    claims.get_by_role("button", name=f"Release item {senior_item}").click()

    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    expect(page.get_by_test_id("my-claims").get_by_test_id(f"my-claim-{senior_item}")).to_have_count(0)
    assert ExceptionItem.objects.get(pk=senior_item).status == ItemStatus.OPEN
    page.get_by_test_id("my-claims").get_by_role("link", name=f"Resume item {first}").click()
    expect(page.get_by_role("heading", name=re.compile(f"Item {first}"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Approve"))).to_be_visible()
