"""The supervisors' replay page: paste or pick a draft, replay it, read the result, publish it."""

import random
import re

import pytest
import yaml
from django.test import Client
from playwright.sync_api import expect

from exceptions_app.models import PolicyVersion, ReplayRun, ReplayStatus, Workflow
from exceptions_app.policy.document import policy_document_checksum
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.replay import ReplayWindow, policy_replay
from exceptions_app.services.tokens import principal_ensure
from tests.browser_helpers import person, sign_in, watch
from tests.fixtures.gate import BILLING, billing_document
from tests.fixtures.replay import changed_draft, judge_some, live_tables_state, submit_batches, varied_body

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def supervisor(agent_client, billing_queues) -> Client:
    rng = random.Random(11)
    submit_batches(agent_client, [varied_body(rng, index) for index in range(300)])
    sam = principal_ensure(name="sam", role="supervisor")
    judge_some(sam, count=45)
    client = Client()
    client.force_login(sam.user)
    return client


def _run(client, draft: dict | str, window: str = "7d", **headers):
    text = draft if isinstance(draft, str) else yaml.safe_dump(draft)
    return client.post("/policies/replay/run", {"workflow": BILLING, "draft": text, "window": window}, **headers)


@pytest.mark.django_db
def test_the_page_starts_from_the_published_policy_or_a_picked_version(supervisor):
    page = supervisor.get("/policies/replay").content.decode()
    assert "large_adjustment" in page
    assert 'value="billing.invoice_adjustment" selected' in page

    policy_publish(document=changed_draft(), source="file")
    assert "mid_adjustment" in supervisor.get(f"/policies/replay?workflow={BILLING}").content.decode()
    picked = supervisor.get(f"/policies/replay?workflow={BILLING}&from=1").content.decode()
    assert "mid_adjustment" not in picked
    assert supervisor.get("/policies/replay?workflow=no.such").status_code == 404


@pytest.mark.django_db
def test_a_replay_shows_the_matrix_rules_and_samples_linking_to_items(supervisor):
    before = live_tables_state()
    # The page's default window is the last 7 days, as is a window with no bound.
    expected = policy_replay(
        workflow=Workflow.objects.get(name=BILLING), document=changed_draft(), window=ReplayWindow()
    )

    response = _run(supervisor, changed_draft(), **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="replay-result"'), "an htmx request gets the result partial only"
    for current, row in expected["matrix"].items():
        for draft, count in row.items():
            assert f'data-testid="cell-{current}-{draft}">{count}<' in html
    assert f'data-testid="would-leak">{expected["would_leak"]}<' in html
    assert "mid_adjustment" in html
    linked = [sample["item_id"] for sample in expected["samples"] if sample["item_id"]]
    assert linked
    assert all(f'href="/items/{item_id}"' in html for item_id in linked)
    assert f'name="checksum" value="{expected["draft_checksum"]}"' in html
    assert live_tables_state() == before


@pytest.mark.django_db
def test_without_htmx_the_whole_page_comes_back_with_the_result(supervisor):
    html = _run(supervisor, changed_draft()).content.decode()

    assert "<h1>Replay a draft policy</h1>" in html
    assert 'data-testid="replay-matrix"' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("draft", "shown"),
    [
        ("rules: [", "not valid YAML or JSON"),
        ("- just\n- a list", "a policy is a mapping"),
        ('workflow: billing.invoice_adjustment\ndescription: "a\\0b"', "draft: description"),
    ],
)
def test_a_draft_that_cannot_be_read_is_400_with_the_reason(supervisor, draft, shown):
    versions = PolicyVersion.objects.count()

    response = _run(supervisor, draft, **HTMX)

    assert response.status_code == 400
    assert shown in response.content.decode()
    assert PolicyVersion.objects.count() == versions


@pytest.mark.django_db
def test_an_invalid_rule_is_400_naming_it_and_the_parser_message(supervisor):
    draft = billing_document()
    draft["rules"][2]["when"] = "output.currency !="

    response = _run(supervisor, draft, **HTMX)

    assert response.status_code == 400
    html = response.content.decode()
    assert "rule <strong>currency_mismatch</strong>: invalid CEL expression:" in html


@pytest.mark.django_db
def test_a_bad_window_or_workflow_is_400(supervisor):
    assert _run(supervisor, changed_draft(), window="forever", **HTMX).status_code == 400
    response = supervisor.post("/policies/replay/run", {"workflow": "no.such", "draft": "{}", "window": "7d"}, **HTMX)
    assert response.status_code == 400
    assert "unknown workflow" in response.content.decode()


@pytest.mark.django_db
def test_a_large_window_starts_a_run_whose_result_the_page_polls(supervisor, settings):
    settings.TOLLGATE_REPLAY_SYNC_MAX = 10

    html = _run(supervisor, changed_draft(), **HTMX).content.decode()

    run = ReplayRun.objects.get()
    assert run.status == ReplayStatus.QUEUED
    assert f'hx-get="/policies/replay/runs/{run.pk}"' in html
    assert 'hx-trigger="every 2s"' in html
    assert "0 of 300 decisions" in html
    expected = policy_replay(workflow=run.workflow, document=run.document, window=ReplayWindow())
    ReplayRun.objects.filter(pk=run.pk).update(status=ReplayStatus.DONE, result=expected)
    done = supervisor.get(f"/policies/replay/runs/{run.pk}", **HTMX).content.decode()
    assert "every 2s" not in done
    assert f'data-testid="cell-hold-proceed">{expected["matrix"]["hold"]["proceed"]}<' in done
    assert supervisor.get("/policies/replay/runs/999999").status_code == 404


@pytest.mark.django_db
def test_publishing_needs_the_draft_that_was_replayed(supervisor):
    draft = changed_draft()
    text = yaml.safe_dump(draft)
    body = {"workflow": BILLING, "draft": text, "checksum": policy_document_checksum(billing_document())}

    refused = supervisor.post("/policies/replay/publish", body)

    assert refused.status_code == 400
    assert Workflow.objects.get(name=BILLING).current_policy.version == 1
    response = supervisor.post("/policies/replay/publish", {**body, "checksum": policy_document_checksum(draft)})
    assert response.status_code == 302
    version = Workflow.objects.get(name=BILLING).current_policy
    assert (version.version, version.source, version.published_by.username) == (2, "ui", "sam")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_supervisor_replays_a_draft_and_publishes_it_in_the_browser(live_server, page, agent_client, billing_queues):
    rng = random.Random(13)
    submit_batches(agent_client, [varied_body(rng, index) for index in range(200)])
    sam = person("sam", role="supervisor", teams=())
    sam.user.is_superuser = sam.user.is_staff = True
    sam.user.save()
    reports = watch(page)
    sign_in(page, live_server.url, "sam")

    page.get_by_role("link", name="Replay").click()
    expect(page.get_by_role("heading", name="Replay a draft policy")).to_be_visible()
    draft = page.get_by_label(re.compile("Draft policy of"))
    draft.fill(draft.input_value().replace("auto_approve: 0.9", "auto_approve: 0.5"))
    page.get_by_role("button", name="Replay").click()

    expect(page.get_by_test_id("replay-matrix")).to_be_visible()
    expected = policy_replay(
        workflow=Workflow.objects.get(name=BILLING),
        document={**billing_document(), "thresholds": {"auto_approve": 0.5, "auto_reject": 0.2}},
        window=ReplayWindow(limit=1000),
    )
    expect(page.get_by_test_id("cell-hold-proceed")).to_have_text(str(expected["matrix"]["hold"]["proceed"]))
    assert expected["matrix"]["hold"]["proceed"] > 0
    page.get_by_test_id("replay-publish").click()

    expect(page.get_by_text(f"Published {BILLING} v2.")).to_be_visible()
    assert Workflow.objects.get(name=BILLING).current_policy.document["thresholds"]["auto_approve"] == 0.5
    assert not reports.csp_violations
    assert not reports.errors
