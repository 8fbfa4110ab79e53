"""Issue 18, findings 10 and 11 in Chromium, and axe-core on every console page in each state
(errors shown, panels open, narrow width): no serious or critical violation.

axe-core comes from npm (tests/axe/package.json, installed by ``make axe`` into a git-ignored
folder); it is evaluated through the DevTools protocol, which the page's CSP does not govern."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from exceptions_app.models import ExceptionItem, ItemStatus
from tests.browser_helpers import person, sign_in
from tests.fixtures.gate import hold, invoice_output

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 720}


class Axe:
    """Runs axe-core on the page as it is and keeps every serious or critical violation, by state."""

    def __init__(self, page):
        assert AXE.exists(), f"axe-core is missing: run `make axe` (npm install in {AXE.parents[2]})"
        page.set_default_timeout(20_000)  # these walks are long; a busy machine must not fail them
        self.page = page
        self.source = AXE.read_text()
        self.found: list[str] = []

    def check(self, state: str) -> None:
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(f"{self.source}\n;undefined")
        results = self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        for violation in results["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [node["target"] for node in violation["nodes"]][:3]
                self.found.append(f"{state}: {violation['id']} ({violation['impact']}) at {targets}")


def page_scrolls_sideways(page) -> bool:
    wide = page.evaluate(
        """() => document.documentElement.scrollWidth > window.innerWidth + 1
            ? Array.from(document.querySelectorAll("main *"))
                .filter((node) => node.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 3).map((node) => node.tagName + "." + node.className)
            : null"""
    )
    assert wide is None, f"the page scrolls sideways; wider than the screen: {wide}"
    return False


def test_finding_10_and_axe_on_the_operator_pages_in_every_state(live_server, page, agent_client, billing_queues):
    person("olga")
    first = hold(agent_client, context={"customer": "ACME", "note": "x" * 300})
    hold(agent_client, output=invoice_output(amount=50_000.0))
    axe = Axe(page)
    page.goto(f"{live_server.url}/accounts/login/")
    axe.check("sign-in")
    sign_in(page, live_server.url, "olga")
    axe.check("queues")

    page.set_viewport_size(PHONE)
    assert not page_scrolls_sideways(page)
    header = page.locator("#queue-table thead")
    expect(header.get_by_text("Waiting")).to_be_visible()  # a kept column
    expect(header.get_by_text("Claimed")).to_be_hidden()  # one the table lets go at this width
    axe.check("queues at 390 px")
    page.set_viewport_size(DESKTOP)

    page.get_by_test_id("queue-billing").focus()
    page.keyboard.press("Enter")  # finding 11: Enter on a queue row takes its next item
    expect(page.get_by_role("heading", name=re.compile(f"Item {first}"))).to_be_visible()
    axe.check("item, claimed")
    ids = page.evaluate("Array.from(document.querySelectorAll('[id]'), node => node.id)")
    assert sorted({i for i in ids if ids.count(i) > 1}) == []  # finding 11: no duplicate ids
    before = page.get_by_test_id("sla").inner_text()
    # finding 11: the SLA countdown ticks (within a few seconds, however busy the machine)
    page.wait_for_function("(before) => document.querySelector('[data-testid=sla]').innerText !== before", arg=before)

    page.keyboard.press("r")
    axe.check("item, reject panel open")
    page.locator("#reject-panel").get_by_label("Other reason code").fill("Bad Code")
    page.locator("#reject-panel").get_by_role("button", name="Reject").click()
    expect(page.locator("#reject-panel .errorlist")).to_be_visible()
    axe.check("item, refusal shown")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.get_by_label("Edited output (JSON)").fill('{"invoice_id": "X"}')
    expect(page.get_by_test_id("schema-errors")).to_be_visible()
    axe.check("item, editor open with schema errors")
    page.keyboard.press("Escape")

    page.set_viewport_size(PHONE)
    assert not page_scrolls_sideways(page)
    expect(page.get_by_role("button", name=re.compile("^Approve"))).to_be_visible()
    axe.check("item at 390 px")
    page.screenshot(path=str(Path(__file__).resolve().parents[1] / "docs" / "screenshots" / "item-390px.png"))
    page.set_viewport_size(DESKTOP)

    page.keyboard.press("a")
    expect(page.get_by_test_id("undo")).to_be_visible()
    axe.check("queues, undo offered")
    page.goto(f"{live_server.url}/items/{first}")
    page.keyboard.press("n")  # finding 11: n on an item page takes the next item of its queue
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()  # billing is empty now
    page.goto(f"{live_server.url}/items/search?status=resolved")
    axe.check("search")
    page.get_by_label("Select all shown").check()
    page.get_by_label("Action", exact=True).select_option("reject")
    page.get_by_label("Reason code (to reject)").fill("wrong_amount")
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_test_id("bulk-confirm")).to_be_visible()
    axe.check("search, bulk confirmation")
    page.set_viewport_size(PHONE)
    assert not page_scrolls_sideways(page)
    axe.check("search at 390 px")
    page.set_viewport_size(DESKTOP)

    response = page.goto(f"{live_server.url}/dashboard")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()  # finding 11: styled
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    axe.check("403 on the dashboard")

    assert not axe.found, "\n".join(axe.found)
    assert ExceptionItem.objects.filter(status=ItemStatus.CLAIMED).count() <= 1


def test_finding_11_and_axe_on_the_supervisor_pages(live_server, page, agent_client, billing_queues):
    person("sam", role="supervisor")
    item_id = hold(agent_client)
    axe = Axe(page)
    sign_in(page, live_server.url, "sam")
    page.goto(f"{live_server.url}/dashboard")
    axe.check("dashboard")
    charts = page.locator("figure.chart svg")
    assert charts.count() >= 2
    assert page.locator("figure.chart svg line.axis-line").count() == 2 * charts.count()  # finding 11: axes
    expect(page.locator("figure.chart svg text.axis-label").first).to_be_attached()
    page.set_viewport_size(PHONE)
    assert not page_scrolls_sideways(page)
    axe.check("dashboard at 390 px")
    page.set_viewport_size(DESKTOP)

    page.goto(f"{live_server.url}/items/{item_id}")
    page.get_by_role("button", name="Claim this item").click()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    ids = page.evaluate("Array.from(document.querySelectorAll('[id]'), node => node.id)")
    assert sorted({i for i in ids if ids.count(i) > 1}) == []  # every panel's fields, supervisor's too
    assert ids.count("id_note") == 0
    page.get_by_label("Hand to operator (username)").fill("nobody")
    page.get_by_role("button", name="Reassign").click()
    expect(page.get_by_test_id("panel-refusal")).to_be_visible()
    axe.check("item as supervisor, refusal shown")

    assert not axe.found, "\n".join(axe.found)
