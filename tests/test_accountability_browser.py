"""Audit samples in the console (two keystrokes: a right, r wrong) and the accountability page, in Chromium."""

import re

import pytest
from playwright.sync_api import expect

from exceptions_app.models import Delivery, ExceptionItem, ItemKind, PolicySource
from exceptions_app.services.policies import policy_publish
from tests.browser_helpers import person, sign_in
from tests.fixtures.gate import BILLING, billing_document, decision_body

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_judges_audit_samples_right_with_a_and_wrong_with_r(
    live_server, page, agent_client, billing_queues
):
    policy_publish(document=billing_document(sampling={"proceed_rate": 1.0}), source=PolicySource.FILE)
    for number in range(2):
        answer = agent_client.post("/api/v1/decisions", decision_body(correlation_id=f"a{number}"), format="json")
        assert answer.json()["verdict"] == "proceed"
    first, second = ExceptionItem.objects.filter(kind=ItemKind.AUDIT).order_by("pk")
    person("olga")
    sign_in(page, live_server.url, "olga")

    page.keyboard.press("j")
    page.keyboard.press("n")
    expect(page.get_by_role("heading", name=re.compile(f"Item {first.pk} "))).to_be_visible()
    expect(page.get_by_test_id("kind-audit")).to_contain_text("already proceeded")
    expect(page.get_by_role("button", name=re.compile("^Right"))).to_be_visible()
    page.keyboard.press("a")
    expect(page.get_by_role("heading", name=re.compile(f"Item {second.pk} "))).to_be_visible()  # the next sample
    expect(page.get_by_test_id("status")).to_have_text("Claimed")
    page.keyboard.press("r")
    page.get_by_label("Reason code").fill("wrong_amount")
    page.get_by_role("button", name="Wrong", exact=True).click()
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()

    judged = {item.pk: item.resolution for item in ExceptionItem.objects.filter(pk__in=[first.pk, second.pk])}
    assert judged == {first.pk: "approve", second.pk: "reject"}
    assert Delivery.objects.get(payload__type="audit.failed").item_id == second.pk


def test_the_accountability_page_draws_its_curves_without_inline_script(live_server, page, agent_client):
    policy_publish(
        # Three right judgements bound the error below 0.56 (Wilson at n = 3): a target of 0.6 is met.
        document=billing_document(sampling={"proceed_rate": 1.0}, targets={"max_unattended_error": 0.6}),
        source=PolicySource.FILE,
    )
    for number in range(3):
        agent_client.post("/api/v1/decisions", decision_body(correlation_id=f"p{number}"), format="json")
    supervisor = person("sam", "supervisor", teams=())
    for item in ExceptionItem.objects.filter(kind=ItemKind.AUDIT):
        from exceptions_app.services.items import item_claim, item_resolve

        item_claim(item_id=item.pk, principal=supervisor)
        item_resolve(item_id=item.pk, principal=supervisor, action="approve")
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    sign_in(page, live_server.url, "sam", landing=None)
    page.goto(f"{live_server.url}/dashboard")
    page.get_by_test_id("accountability-links").get_by_role("link", name=BILLING).click()

    expect(page.get_by_role("heading", name=re.compile("Accountability"))).to_be_visible()
    expect(page.get_by_test_id("proceeds")).to_have_text("3")
    expect(page.get_by_test_id("reliability-chart").locator("circle")).to_have_count(1)
    expect(page.get_by_test_id("tradeoff-chart").locator("polyline").first).to_be_attached()
    expect(page.get_by_test_id("recommended")).to_be_visible()
    assert violations == []
