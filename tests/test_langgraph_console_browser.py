"""An item held with a LangGraph interrupt in Chromium: the allowed responses decide the buttons,
and the keyboard flow works for them (accept, edit the arguments, respond with a text, ignore)."""

import json
import re

import pytest
from playwright.sync_api import expect

from exceptions_app.interrupts import item_human_response
from exceptions_app.models import ExceptionItem
from tests.browser_helpers import person, sign_in
from tests.fixtures.gate import hold, invoice_output
from tests.test_console_a11y_browser import Axe
from tests.test_console_browser import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def held_with_interrupt(agent_client, *, description: str = "Re-rate the invoice.", **allowed: bool) -> int:
    config = {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True, **allowed}
    interrupt = {
        "action_request": {"action": "adjust_invoice", "args": invoice_output()},
        "config": config,
        "description": description,
    }
    return hold(agent_client, interrupt=interrupt)  # the output sent beside it equals the args


def _open(page, live_server, item_id: int) -> None:
    page.goto(f"{live_server.url}/items/{item_id}")
    claim = page.get_by_role("button", name="Claim this item")
    if claim.count():  # not when the console handed it over as the next item
        claim.click()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")


def test_only_the_allowed_responses_show_and_respond_works_from_the_keyboard(
    live_server, page, agent_client, billing_queues
):
    person("olga")
    hostile = "<script>window.pwned = 1</script> **check** the tariff"
    item_id = held_with_interrupt(agent_client, description=hostile, allow_accept=False, allow_ignore=False)
    sign_in(page, live_server, "olga")
    _open(page, live_server, item_id)
    actions = page.get_by_role("region", name="Actions")
    axe = Axe(page)
    axe.check("langgraph item, claimed")

    expect(page.get_by_test_id("interrupt-action")).to_have_text("adjust_invoice")
    expect(page.get_by_test_id("interrupt-description")).to_have_text(hostile)  # escaped text, not markup
    expect(page.get_by_test_id("interrupt-allows")).to_contain_text("edit, response")
    expect(actions.get_by_role("button", name=re.compile("^(Approve|Accept)"))).to_have_count(0)
    expect(actions.get_by_text(re.compile("^(Reject|Ignore)"))).to_have_count(0)
    expect(actions.get_by_role("button", name=re.compile("^Edit the arguments"))).to_be_visible()
    expect(actions.get_by_text("Respond")).to_be_visible()
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(SCREENSHOTS / "langgraph-item.png"), full_page=True)

    page.keyboard.press("a")  # no accept here: nothing happens
    page.keyboard.press("r")  # no ignore here: nothing happens
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    page.keyboard.press("t")
    response = page.get_by_label("Your response to the agent")
    expect(response).to_be_focused()
    axe.check("langgraph item, respond panel open")
    response.fill("Use the March tariff, then send it again.")
    page.keyboard.press("Control+Enter")

    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    item = ExceptionItem.objects.get(pk=item_id)
    assert item_human_response(item) == {"type": "response", "args": "Use the March tariff, then send it again."}
    page.goto(f"{live_server.url}/items/{item_id}")
    expect(page.get_by_test_id("human-response")).to_contain_text(re.compile("with response: .*March tariff"))
    axe.check("langgraph item, resolved")
    assert not axe.found, "\n".join(axe.found)


def test_accept_edit_and_ignore_from_the_keyboard(live_server, page, agent_client, billing_queues):
    person("olga")
    accepted = held_with_interrupt(agent_client, allow_edit=False, allow_respond=False, allow_ignore=False)
    edited = held_with_interrupt(agent_client, allow_accept=False, allow_respond=False, allow_ignore=False)
    ignored = held_with_interrupt(agent_client, allow_accept=False, allow_edit=False, allow_respond=False)
    sign_in(page, live_server, "olga")

    _open(page, live_server, accepted)
    actions = page.get_by_role("region", name="Actions")
    expect(actions.get_by_role("button", name=re.compile("^Accept"))).to_be_visible()
    expect(actions.get_by_role("button", name=re.compile("^Edit"))).to_have_count(0)
    expect(page.locator("#editor")).to_have_count(0)
    expect(actions.get_by_text("Respond")).to_have_count(0)
    page.keyboard.press("a")
    expect(page.get_by_role("heading", name=re.compile(r"Item \d+"))).to_be_visible()  # the next item

    _open(page, live_server, edited)
    page.keyboard.press("e")
    editor = page.get_by_label("Edited output (JSON)")
    expect(editor).to_be_focused()
    assert json.loads(editor.input_value()) == invoice_output()  # the args are what is edited
    editor.fill(json.dumps(invoice_output(amount=45.0)))
    expect(page.get_by_test_id("schema-ok")).to_be_visible()
    page.get_by_role("button", name="Approve with this edit").click()
    expect(page.get_by_role("heading", name=re.compile(r"Item \d+"))).to_be_visible()

    _open(page, live_server, ignored)
    page.keyboard.press("r")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()

    responses = {pk: item_human_response(ExceptionItem.objects.get(pk=pk)) for pk in (accepted, edited, ignored)}
    assert responses[accepted]["type"] == "accept"
    assert responses[edited] == {
        "type": "edit",
        "args": {"action": "adjust_invoice", "args": invoice_output(amount=45.0)},
    }
    assert responses[ignored] == {"type": "ignore", "args": None}

    page.goto(f"{live_server.url}/items/{edited}")
    expect(page.get_by_test_id("human-response")).to_contain_text("edit")
