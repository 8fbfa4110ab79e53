"""The operator console in Chromium: keyboard work mode, editing, claims, escaping, bulk actions."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from exceptions_app.models import AuditEvent, ExceptionItem, ItemStatus
from tests.browser_helpers import person, sign_in
from tests.fixtures.gate import hold, invoice_output

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def test_an_operator_works_a_queue_from_the_keyboard(live_server, page, agent_client, billing_queues):
    person("olga")
    routine = hold(agent_client, value_at_risk="10.00")
    urgent = hold(agent_client, value_at_risk="900000.00", context={"customer": "ACME", "tier": "gold"})
    sign_in(page, live_server.url, "olga")
    expect(page.get_by_test_id("queue-billing").get_by_test_id("depth")).to_have_text("2")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "queue-list.png"), full_page=True)

    page.keyboard.press("j")
    page.keyboard.press("n")
    expect(page.get_by_role("heading", name=re.compile(f"Item {urgent}"))).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    page.screenshot(path=str(SCREENSHOTS / "item.png"), full_page=True)

    page.keyboard.press("e")
    editor = page.get_by_label("Edited output (JSON)")
    expect(editor).to_be_focused()
    editor.fill(json.dumps(invoice_output(amount="lots"), indent=2))
    expect(page.get_by_test_id("schema-errors")).to_contain_text("output.amount")
    editor.fill(json.dumps(invoice_output(amount=99.0), indent=2))
    expect(page.get_by_test_id("schema-ok")).to_be_visible()
    expect(page.get_by_test_id("diff")).to_contain_text('"amount": 99.0')
    page.get_by_test_id("diff").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "editor.png"))
    page.get_by_role("button", name="Approve with this edit").click()

    expect(page.get_by_role("heading", name=re.compile(f"Item {routine}"))).to_be_visible()
    resolved = ExceptionItem.objects.get(pk=urgent)
    assert (resolved.status, resolved.resolution, resolved.final_output["amount"]) == ("resolved", "modify", 99.0)
    page.keyboard.press("a")
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("empty")
    assert ExceptionItem.objects.get(pk=routine).resolution == "approve"


def test_one_key_is_one_request_and_the_address_bar_follows_the_next_item(
    live_server, page, agent_client, billing_queues
):
    """Approving answers with the next item's page itself (no redirect, no second request), and the
    address bar shows that item: it can be reloaded, and Back returns to the item just decided."""
    person("olga")
    first = hold(agent_client, value_at_risk="900.00")
    second = hold(agent_client, value_at_risk="10.00")
    sign_in(page, live_server.url, "olga")
    page.get_by_role("button", name="Next item from billing", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(f"Item {first}"))).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")

    requests = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    page.keyboard.press("a")
    expect(page.get_by_role("heading", name=re.compile(f"Item {second}"))).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/items/{second}")
    assert requests == [("POST", f"{live_server.url}/items/{first}/approve")]
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    assert ExceptionItem.objects.get(pk=first).resolution == "approve"

    page.reload()
    expect(page.get_by_role("heading", name=re.compile(f"Item {second}"))).to_be_visible()
    page.go_back()
    expect(page).to_have_url(f"{live_server.url}/items/{first}")


def test_a_second_operator_cannot_act_on_a_claimed_item(live_server, browser, agent_client, billing_queues):
    person("olga")
    person("otto")
    item_id = hold(agent_client)
    first = browser.new_context().new_page()
    second = browser.new_context().new_page()
    sign_in(first, live_server.url, "olga")
    first.get_by_role("button", name="Next item from billing", exact=True).click()
    expect(first.get_by_test_id("status")).to_have_text("Claimed")

    sign_in(second, live_server.url, "otto")
    second.goto(f"{live_server.url}/items/{item_id}")
    expect(second.get_by_test_id("claimed-by-other")).to_contain_text("olga is working on this item")
    expect(second.get_by_role("button", name=re.compile("^Approve"))).to_have_count(0)
    second.keyboard.press("a")

    item = ExceptionItem.objects.get(pk=item_id)
    assert (item.status, item.claimed_by.username) == (ItemStatus.CLAIMED, "olga")
    first.context.close()
    second.context.close()


def test_hostile_captured_state_is_shown_as_text_and_runs_nothing(live_server, page, agent_client, billing_queues):
    person("olga")
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    item_id = hold(agent_client, context={"note": hostile}, correlation_id="<b>bold</b>")
    sign_in(page, live_server.url, "olga")

    page.goto(f"{live_server.url}/items/{item_id}")
    page.get_by_role("textbox", name="Comment").fill(hostile)
    page.get_by_role("button", name="Add comment").click()

    expect(page.get_by_test_id("json-context")).to_contain_text("<script>window.pwned = 1</script>")
    expect(page.get_by_test_id("comments")).to_contain_text("<img src=x")
    assert page.evaluate("window.pwned") is None
    assert page.locator("main script, main img").count() == 0


def test_bulk_approve_of_twenty_items_audits_each(live_server, page, agent_client, billing_queues):
    person("olga")
    item_ids = [hold(agent_client, correlation_id=f"bulk-{number}") for number in range(20)]
    sign_in(page, live_server.url, "olga")

    page.goto(f"{live_server.url}/items/search?status=open&workflow=billing.invoice_adjustment&reason=low_confidence")
    page.get_by_label("Select all shown").check()
    page.get_by_label("Action", exact=True).select_option("approve")
    page.get_by_test_id("bulk-submit").click()
    page.get_by_role("button", name="Yes, approve 20 items").click()

    expect(page.get_by_role("status").first).to_contain_text("Approved 20 items.")
    assert ExceptionItem.objects.filter(pk__in=item_ids, resolution="approve").count() == 20
    assert AuditEvent.objects.filter(item_id__in=item_ids, action="resolved").count() == 20


def test_an_expired_claim_is_said_plainly_and_can_be_claimed_again(live_server, page, agent_client, billing_queues):
    person("olga")
    item_id = hold(agent_client)
    sign_in(page, live_server.url, "olga")
    page.get_by_role("button", name="Next item from billing", exact=True).click()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    ExceptionItem.objects.filter(pk=item_id).update(claim_expires_at=timezone.now() - timedelta(seconds=5))

    page.reload()
    expect(page.get_by_test_id("lease-expired")).to_contain_text("expired")
    page.get_by_role("button", name="Claim it again").click()

    expect(page.get_by_role("button", name=re.compile("^Approve"))).to_be_visible()
    assert ExceptionItem.objects.get(pk=item_id).claim_expires_at > timezone.now()


def test_the_console_is_usable_on_a_narrow_screen(live_server, browser, agent_client, billing_queues):
    person("olga")
    hold(agent_client)
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    sign_in(page, live_server.url, "olga")
    page.get_by_role("button", name="Next item from billing", exact=True).click()

    approve = page.get_by_role("button", name=re.compile("^Approve"))
    expect(approve).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    context.close()
