"""Issue 18, findings 7 to 9 in Chromium: confirmations in proportion to risk, undo before the
delivery leaves, evidence beside the decision, and reasons to reject picked from the policy."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from exceptions_app.models import AuditEvent, Delivery, ExceptionItem, ItemStatus, PolicySource
from exceptions_app.services.policies import policy_publish
from tests.browser_helpers import person, sign_in
from tests.fixtures.gate import billing_document, hold, invoice_output
from tests.test_console_a11y_browser import Axe

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_next(page, queue: str = "billing") -> None:
    page.get_by_role("button", name=f"Next item from {queue}", exact=True).click()
    expect(page.get_by_test_id("status")).to_have_text("Claimed")


def olga_takes_the_first_of_two(page, live_server, agent_client) -> tuple[int, int]:
    """Two items held; olga, signed in, has taken the first with Next; their ids."""
    person("olga")
    first, second = hold(agent_client), hold(agent_client)
    sign_in(page, live_server.url, "olga")
    open_next(page)
    return first, second


def test_finding_7_a_risky_item_takes_a_then_enter_on_a_confirmation_naming_the_risk(
    live_server, page, agent_client, billing_queues
):
    person("olga")
    risky = hold(agent_client, value_at_risk="60000.00")
    sign_in(page, live_server.url, "olga")
    open_next(page)

    page.keyboard.press("a")

    expect(page.get_by_test_id("confirm-risks")).to_contain_text("value at risk 60,000.00 is at or above 50,000")
    confirm = page.get_by_role("button", name=re.compile("^Confirm approval"))
    expect(confirm).to_be_focused()
    page.screenshot(path=str(SCREENSHOTS / "confirm.png"))
    assert ExceptionItem.objects.get(pk=risky).status == ItemStatus.CLAIMED  # one key approved nothing
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("undo")).to_contain_text(f"Approved item {risky}.")
    assert ExceptionItem.objects.get(pk=risky).resolution == "approve"


def test_finding_7_bulk_actions_have_no_default_and_confirm_the_count_and_the_value(
    live_server, page, agent_client, billing_queues
):
    person("olga")
    item_ids = [hold(agent_client, value_at_risk=f"{100 * (n + 1)}.00", correlation_id=f"b-{n}") for n in range(3)]
    sign_in(page, live_server.url, "olga")
    page.goto(f"{live_server.url}/items/search?status=open&reason=low_confidence")
    page.get_by_label("Select all shown").check()

    page.get_by_test_id("bulk-submit").click()  # no action chosen: the browser refuses to send it
    page.wait_for_timeout(200)
    assert not ExceptionItem.objects.filter(pk__in=item_ids, status=ItemStatus.RESOLVED).exists()
    page.get_by_label("Action", exact=True).select_option("approve")
    page.get_by_test_id("bulk-submit").click()

    confirmation = page.get_by_test_id("bulk-confirm")
    expect(confirmation).to_contain_text("Approve 3 items?")
    expect(page.get_by_test_id("bulk-value")).to_have_text("600.00")
    assert not ExceptionItem.objects.filter(pk__in=item_ids, status=ItemStatus.RESOLVED).exists()
    confirmation.get_by_role("button", name="Yes, approve 3 items").click()
    expect(page.get_by_role("status").first).to_contain_text("Approved 3 items.")
    assert ExceptionItem.objects.filter(pk__in=item_ids, resolution="approve").count() == 3


def test_finding_7_a_decision_can_be_undone_before_its_delivery_is_released(
    live_server, page, agent_client, billing_queues
):
    first, second = olga_takes_the_first_of_two(page, live_server, agent_client)

    page.keyboard.press("a")

    expect(page.get_by_role("heading", name=re.compile(f"Item {second}"))).to_be_visible()
    expect(page.get_by_test_id("undo")).to_contain_text(f"Approved item {first}.")
    resolved = ExceptionItem.objects.get(pk=first)
    delivery = Delivery.objects.get(item_id=first)
    assert (delivery.next_attempt_at - resolved.resolved_at).total_seconds() >= 8  # not due before the window ends
    page.keyboard.press("u")

    expect(page.get_by_role("heading", name=re.compile(f"Item {first}"))).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("nothing was sent")
    item = ExceptionItem.objects.get(pk=first)
    assert (item.status, item.resolution, item.claimed_by.username) == (ItemStatus.CLAIMED, "", "olga")
    assert not Delivery.objects.filter(item_id=first).exists()
    undone = AuditEvent.objects.get(item_id=first, action="resolution_undone")
    assert undone.payload["deliveries_withdrawn"] == [delivery.public_id]
    # The next item claimed after the decision stays in sight, among her claims.
    expect(page.get_by_test_id(f"my-claim-{second}")).to_be_visible()


def test_finding_8_the_values_each_rule_compared_are_beside_the_proposal(
    live_server, page, agent_client, billing_queues
):
    person("olga")
    output = invoice_output(type="credit", amount=20_000.0)
    item_id = hold(agent_client, output=output, input={"invoice_total": 900.0, "currency": "EUR"})
    sign_in(page, live_server.url, "olga")
    page.goto(f"{live_server.url}/items/{item_id}")

    evidence = page.get_by_test_id("evidence-credit_exceeds_invoice")
    expect(evidence).to_contain_text("input.invoice_total")
    expect(evidence).to_contain_text("900.0")
    expect(evidence).to_contain_text("output.amount")
    expect(evidence).to_contain_text("20000.0")
    assert evidence.bounding_box()["y"] < page.viewport_size["height"]  # above the fold
    expect(page.get_by_text("output.amount > input.invoice_total", exact=False).first).not_to_be_visible()  # folded
    fields = page.get_by_test_id("fields-output")
    expect(fields).to_contain_text("Amount")
    expect(fields).to_contain_text("20000.0")
    expect(page.get_by_test_id("proposal")).not_to_be_visible()  # the raw JSON is one click away
    page.screenshot(path=str(SCREENSHOTS / "evidence.png"))


def test_finding_9_reject_takes_r_then_a_number_and_messages_are_plain_english(
    live_server, page, agent_client, billing_queues
):
    first, second = olga_takes_the_first_of_two(page, live_server, agent_client)

    page.keyboard.press("r")
    page.keyboard.press("2")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name=re.compile(f"Item {second}"))).to_be_visible()
    # The reason first: before issue 18, "2" itself became the reason code.
    assert ExceptionItem.objects.get(pk=first).reason_code == "wrong_invoice"
    expect(page.get_by_test_id("undo")).to_contain_text(f"Rejected item {first} (wrong_invoice).")
    # A typed code stays possible where the policy allows it, checked by the one reason-code rule.
    page.keyboard.press("r")
    page.locator("#reject-panel").get_by_label("Other reason code").fill("customer.withdrew")
    page.locator("#reject-panel").get_by_role("button", name="Reject").click()
    expect(page.get_by_test_id("undo")).to_contain_text(f"Rejected item {second} (customer.withdrew).")


def typed_rule_published() -> None:
    """Billing with a highest-risk rule: approving a refund takes its invoice id, typed."""
    document = billing_document()
    document["rules"].append(
        {
            "code": "refund_to_new_account",
            "when": "output.type == 'refund'",
            "severity": "critical",
            "confirm": "typed",
            "attest": "output.invoice_id",
            "description": "Refunds go to the account on the request: check the invoice by phone first.",
        }
    )
    policy_publish(document=document, source=PolicySource.FILE)


def test_a_typed_attestation_rule_takes_its_value_typed_not_only_enter(live_server, page, agent_client, billing_queues):
    person("olga")
    typed_rule_published()
    item_id = hold(agent_client, output=invoice_output(type="refund", invoice_id="INV-7781"))
    sign_in(page, live_server.url, "olga")
    open_next(page)

    page.keyboard.press("a")

    attestation = page.get_by_label("Type the value of output.invoice_id to approve")
    expect(attestation).to_be_focused()
    expect(page.get_by_test_id("confirm-risks")).to_contain_text("refund_to_new_account (critical)")
    expect(page.get_by_test_id("attest-expected")).to_have_text("INV-7781")
    page.keyboard.press("Enter")  # nothing typed: Enter alone approves nothing
    page.wait_for_timeout(300)
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED
    page.keyboard.type("INV-7718")
    with page.expect_response(re.compile(r"/approve$")) as answer:
        page.keyboard.press("Enter")

    assert answer.value.status == 400
    attestation = page.get_by_label("Type the value of output.invoice_id to approve")
    expect(attestation).to_be_focused()
    expect(attestation).to_have_value("INV-7718")
    expect(attestation).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#approve_attestation_error")).to_contain_text("This is not the value of output.invoice_id")
    expect(page).to_have_url(f"{live_server.url}/items/{item_id}")
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.CLAIMED
    axe = Axe(page)
    axe.check("item, typed attestation refused")
    assert not axe.found, "\n".join(axe.found)
    page.screenshot(path=str(SCREENSHOTS / "attest.png"))
    attestation.fill("inv-7781")  # letter case and spaces aside
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("undo")).to_contain_text(f"Approved item {item_id}.")
    assert ExceptionItem.objects.get(pk=item_id).resolution == "approve"
    # Such items are approved one by one: bulk approve refuses them.
    other = hold(agent_client, output=invoice_output(type="refund", invoice_id="INV-9"), correlation_id="other")
    page.goto(f"{live_server.url}/items/search?status=open")
    page.get_by_label("Select all shown").check()
    page.get_by_label("Action", exact=True).select_option("approve")
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_role("status").first).to_contain_text(f"approving item {other} takes a typed attestation")
    assert ExceptionItem.objects.get(pk=other).status == ItemStatus.OPEN
