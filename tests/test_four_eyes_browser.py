"""Four eyes in Chromium: the first approver's `a` records one approval and moves on; the item then
says it waits for a second approval and names who approved and when, and its first approver cannot
take it again; a second person's `a` resolves it. Blind review: a judge sees how many judgements
are in but not what they were; the adjudicator sees them all. The keyboard flow is the usual one."""

import re

import pytest
from playwright.sync_api import expect

from exceptions_app.models import ExceptionItem, ItemStatus, PolicySource, Vote
from exceptions_app.services.policies import policy_publish
from tests.browser_helpers import person, sign_in
from tests.fixtures.gate import billing_document, hold

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def four_eyes(billing_queues):
    rule = {"when": "value_at_risk > 10000.0", "required": 2}
    policy_publish(document=billing_document(approvals=[rule]), source=PolicySource.FILE)


def test_an_item_waits_for_a_second_approver_who_resolves_it(live_server, browser, page, four_eyes, agent_client):
    person("olga")
    person("otto")
    item_id = hold(agent_client, value_at_risk="20000.00")
    sign_in(page, live_server.url, "olga")
    page.goto(f"{live_server.url}/items/{item_id}")
    expect(page.get_by_test_id("approvals")).to_contain_text("Needs 2 approvals")
    page.get_by_role("button", name="Claim this item").click()
    expect(page.get_by_text("Claimed by you")).to_be_visible()

    page.keyboard.press("a")

    expect(page.get_by_text(re.compile(r"Approved item \d+: 1 of 2 approvals so far"))).to_be_visible()
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.OPEN
    page.goto(f"{live_server.url}/items/{item_id}")
    approvals = page.get_by_test_id("approvals")
    expect(approvals).to_contain_text("Waiting for approval 2 of 2")
    expect(approvals).to_contain_text("You already voted on it")
    expect(page.get_by_test_id("votes")).to_contain_text(re.compile(r"Approved by olga at \d\d:\d\d:\d\d"))
    expect(page.get_by_role("button", name="Claim this item")).to_have_count(0)

    second = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    second.set_default_timeout(10_000)
    sign_in(second, live_server.url, "otto")
    second.keyboard.press("n")  # the usual way in: next item from the first queue
    expect(second.get_by_role("heading", name=re.compile(f"Item {item_id}"))).to_be_visible()
    expect(second.get_by_test_id("approvals")).to_contain_text("Waiting for approval 2 of 2")
    expect(second.get_by_test_id("votes")).to_contain_text("Approved by olga")

    second.keyboard.press("a")

    expect(second.get_by_text(f"Approved item {item_id}.")).to_be_visible()
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.RESOLVED
    assert list(Vote.objects.filter(item_id=item_id).order_by("seat").values_list("voter__username", flat=True)) == [
        "olga",
        "otto",
    ]
    second.context.close()


def test_blind_judgements_stay_hidden_then_the_adjudicator_sees_them_all(
    live_server, browser, page, billing_queues, agent_client
):
    review = {"share": 1.0, "judgements": 2, "adjudication_queue": "billing-senior"}
    policy_publish(document=billing_document(blind_review=review), source=PolicySource.FILE)
    for name in ("olga", "otto", "ada"):
        person(name)
    item_id = hold(agent_client)

    def signed_in(name: str):
        opened = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        opened.set_default_timeout(10_000)
        sign_in(opened, live_server.url, name)
        return opened

    sign_in(page, live_server.url, "olga")
    page.keyboard.press("n")
    expect(page.get_by_role("heading", name=re.compile(f"Item {item_id}"))).to_be_visible()
    expect(page.get_by_test_id("blind-review")).to_contain_text("0 of 2 independent judgements are in")
    page.keyboard.press("a")
    expect(page.get_by_text(f"Judged item {item_id}: 1 of 2 blind judgements are in.")).to_be_visible()

    otto = signed_in("otto")
    otto.keyboard.press("n")
    expect(otto.get_by_role("heading", name=re.compile(f"Item {item_id}"))).to_be_visible()
    expect(otto.get_by_test_id("blind-review")).to_contain_text("1 of 2 independent judgements are in")
    expect(otto.get_by_test_id("judgements")).to_have_count(0)  # olga's judgement is not shown to him
    otto.keyboard.press("r")
    otto.keyboard.press("1")
    otto.keyboard.press("Enter")
    expect(otto.get_by_text(re.compile(f"Judged item {item_id}: the judges disagree"))).to_be_visible()
    otto.context.close()

    ada = signed_in("ada")
    ada.goto(f"{live_server.url}/items/{item_id}")
    expect(ada.get_by_test_id("blind-review")).to_contain_text("this item needs your adjudication")
    judgements = ada.get_by_test_id("judgements")
    expect(judgements).to_contain_text("olga: approve")
    expect(judgements).to_contain_text("otto: reject")
    ada.get_by_role("button", name="Claim this item").click()
    expect(ada.get_by_text("Claimed by you")).to_be_visible()
    ada.keyboard.press("a")
    expect(ada.get_by_text(f"Approved item {item_id}.")).to_be_visible()
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.RESOLVED
    ada.context.close()
