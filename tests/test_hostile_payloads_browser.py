"""Hostile text from agents and operators is shown as text and runs nothing, in Chromium: captured
state, output, reasons, a comment, a correlation id, a delivery error and a reflected search query
each carry script tags, event handlers, javascript: URLs, tag breakouts and template syntax."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from exceptions_app.models import Delivery, DeliveryStatus
from tests.browser_helpers import BrowserReports, person, sign_in, watch
from tests.fixtures.gate import BILLING

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each piece would set window.__pwned (or open a dialog) if the browser ever treated it as markup.
PIECES = [
    "<script>window.__pwned = 1; alert(1)</script>",
    "<img src=x onerror=window.__pwned=2>",
    "<svg onload=window.__pwned=3></svg>",
    "<a href=javascript:window.__pwned=4>click me</a>",
    "</textarea></pre></code><script>window.__pwned=5</script>",
    "' onmouseover='window.__pwned=6' data-x='",
    "{{ request.user }}{% debug %}{{ 7|add:7 }}",
    "javascript:alert(8)",
]
HOSTILE = " ".join(PIECES)
SHORT = "<script>alert(9)</script>{{ x }}"  # for fields limited to 200 characters
# Nothing inside <main> may be an element that such text could have created.
INJECTED = (
    "main script, main img, main iframe, main object, main a[href^='javascript:'], "
    "main [onerror], main [onload], main [onmouseover], main [data-x]"
)


def assert_inert(page: Page, reports: BrowserReports) -> None:
    page.wait_for_load_state("load")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator(INJECTED).count() == 0
    assert reports.dialogs == []
    # The policy would block a script that escaping had let through, and say so: it must have nothing to say.
    assert reports.csp_violations == []


def test_hostile_text_everywhere_is_shown_literally_and_runs_nothing(
    live_server, page, agent_client, operator_client, billing_queues
):
    person("olga")
    person("sam", role="supervisor")
    held = agent_client.post(
        "/api/v1/decisions",
        {
            "workflow": BILLING,
            "confidence": 0.5,
            "output": {"invoice_id": HOSTILE, "type": "credit", "amount": 1.0, "currency": "EUR", "reason": HOSTILE},
            "input": {"note": HOSTILE, HOSTILE[:60]: "as a key"},
            "context": {"customer": HOSTILE},
            "trace": [HOSTILE],
            "correlation_id": SHORT,
            "model_version": SHORT,
        },
        format="json",
    ).json()["exception"]["id"]
    reported = agent_client.post(
        "/api/v1/exceptions",
        {
            "workflow": BILLING,
            "reason": "tool_failure",
            "message": HOSTILE,
            "callback_url": "http://127.0.0.1:9/hook",
            "context": {"why": HOSTILE},
        },
        format="json",
    )
    assert reported.status_code == 201, reported.content
    reported_id = reported.json()["id"]
    operator_client.post(f"/api/v1/exceptions/{reported_id}/claim")
    assert (
        operator_client.post(
            f"/api/v1/exceptions/{reported_id}/resolve", {"action": "reject", "reason_code": "no"}, format="json"
        ).status_code
        == 200
    )
    assert (
        Delivery.objects.filter(item_id=reported_id).update(
            status=DeliveryStatus.DEAD, dead_at=timezone.now(), last_error=HOSTILE
        )
        == 1
    )
    reports = watch(page)
    sign_in(page, live_server.url, "olga")

    page.goto(f"{live_server.url}/items/{held}")
    page.get_by_role("button", name="Claim this item").click()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    for block in ("proposal", "json-input", "json-context", "json-trace"):
        expect(page.get_by_test_id(block)).to_contain_text(PIECES[0])
        expect(page.get_by_test_id(block)).to_contain_text(PIECES[4])
    expect(page.get_by_test_id("json-context")).to_contain_text(HOSTILE)
    expect(page.locator("main")).to_contain_text(f"correlation {SHORT}")
    assert HOSTILE in page.get_by_label("Edited output (JSON)").input_value()
    page.get_by_role("textbox", name="Comment").fill(HOSTILE)
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_test_id("comments")).to_contain_text(HOSTILE)
    page.locator("main pre:visible").first.hover()  # raw JSON folds away behind the labelled fields
    assert_inert(page, reports)

    page.goto(f"{live_server.url}/items/{reported_id}")
    expect(page.get_by_role("heading", name="Why it was held").locator("..")).to_contain_text(HOSTILE)
    assert_inert(page, reports)

    page.goto(f"{live_server.url}/items/search?workflow={BILLING}")
    expect(page.locator("#results")).to_contain_text(SHORT)
    page.get_by_label("Correlation id").fill(HOSTILE[:200])
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile("correlation_id="))
    page.reload()  # the query reflected into the page by the server, not only typed
    expect(page.get_by_label("Correlation id")).to_have_value(HOSTILE[:200])
    assert_inert(page, reports)

    page.context.clear_cookies()
    sign_in(page, live_server.url, "sam")
    page.goto(f"{live_server.url}/dashboard")
    expect(page.locator("main")).to_contain_text(HOSTILE)
    assert_inert(page, reports)
    assert reports.errors == []
