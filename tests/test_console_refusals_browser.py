"""Issue 18, findings 4 and 5 in Chromium: a refused form stays open with what was typed, its reason
beside the field and in view, at an address that can be reloaded; and nothing the CSP blocks is
loaded in development (DEBUG)."""

import json
import re

import pytest
from playwright.sync_api import expect

from exceptions_app.models import ExceptionItem, ItemStatus
from tests.browser_helpers import person, sign_in, watch
from tests.fixtures.gate import hold, invoice_output

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def olga_claims_a_held_item(page, live_server, agent_client) -> int:
    """olga, signed in, has claimed an item the gate held (from its page); its id."""
    person("olga")
    item_id = hold(agent_client)
    sign_in(page, live_server.url, "olga")
    page.goto(f"{live_server.url}/items/{item_id}")
    page.get_by_role("button", name="Claim this item").click()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    return item_id


def test_finding_4_a_refused_edit_is_inline_focused_and_the_address_reloads(
    live_server, page, agent_client, billing_queues
):
    item_id = olga_claims_a_held_item(page, live_server, agent_client)
    page.keyboard.press("e")
    editor = page.get_by_label("Edited output (JSON)")
    editor.fill(json.dumps(invoice_output(amount="lots")))

    with page.expect_response(re.compile(r"/modify$")) as answer:
        page.get_by_role("button", name="Approve with this edit").click()

    assert answer.value.status == 400
    expect(editor).to_be_focused()
    expect(editor).to_have_attribute("aria-invalid", "true")
    expect(editor).to_have_value(re.compile('"lots"'))
    assert in_view(page, page.get_by_test_id("schema-errors"))
    expect(page).to_have_url(f"{live_server.url}/items/{item_id}")
    page.reload()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")  # a page, not a blank 405
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED


def test_finding_4_a_refused_reject_keeps_its_panel_and_what_was_typed(live_server, page, agent_client, billing_queues):
    item_id = olga_claims_a_held_item(page, live_server, agent_client)
    page.keyboard.press("r")
    panel = page.locator("#reject-panel")
    # By role and name, and the note by its name: the same fields on the console before issue 18
    # ("Reason code", four fields with id="id_note"), so this fails there for the refusal alone.
    code = panel.get_by_role("textbox", name=re.compile("reason code", re.IGNORECASE))
    note = panel.locator("textarea[name=note]")
    code.fill("Not A Code!")
    note.fill("the customer called twice")

    with page.expect_response(re.compile(r"/reject$")) as answer:
        panel.get_by_role("button", name="Reject").click()

    assert answer.value.status == 400
    expect(panel).to_have_attribute("open", "")
    expect(code).to_have_value("Not A Code!")
    expect(code).to_be_focused()
    expect(note).to_have_value("the customer called twice")
    expect(panel.locator(".errorlist")).to_contain_text("lower-case")
    expect(page).to_have_url(f"{live_server.url}/items/{item_id}")
    page.keyboard.press("Escape")  # finding 11: Escape closes the panel (focus was in its field)
    expect(panel).not_to_have_attribute("open", "")
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED


def test_finding_4_a_refused_reassign_shows_its_reason_where_the_supervisor_is(
    live_server, page, agent_client, billing_queues
):
    person("sam", role="supervisor")
    item_id = hold(agent_client)
    sign_in(page, live_server.url, "sam")
    page.goto(f"{live_server.url}/items/{item_id}")
    target = page.get_by_label("Hand to operator (username)")
    target.scroll_into_view_if_needed()
    target.fill("nobody-here")

    with page.expect_response(re.compile(r"/reassign$")) as answer:
        page.get_by_role("button", name="Reassign").click()

    assert answer.value.status == 400
    expect(target).to_be_focused()
    expect(target).to_have_value("nobody-here")
    reason = page.get_by_test_id("panel-refusal")
    expect(reason).to_contain_text("no operator called 'nobody-here'")
    assert in_view(page, reason)
    expect(page).to_have_url(f"{live_server.url}/items/{item_id}")


def test_finding_5_in_development_no_script_the_policy_blocks_is_loaded(
    live_server, page, agent_client, billing_queues, settings
):
    settings.DEBUG = True
    reports = watch(page)
    olga_claims_a_held_item(page, live_server, agent_client)

    scripts = page.eval_on_selector_all("script[src]", "nodes => nodes.map(node => new URL(node.src).pathname)")
    assert scripts == ["/static/django_htmx/htmx-2.min.js", "/static/js/console.js"]
    page.keyboard.press("e")
    page.get_by_label("Edited output (JSON)").fill('{"invoice_id": "X"}')
    expect(page.get_by_test_id("schema-errors")).to_be_visible()  # htmx still works: the live schema check
    assert reports.csp_violations == []
    assert reports.errors == []
