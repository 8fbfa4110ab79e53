"""The replay engine against the live gate: a few thousand varied decisions go through the real
batch API; replaying the published policy must agree with every recorded verdict, and replaying a
changed one must agree with what the gate answers once that change is published."""

import random
from collections import Counter

import pytest
from django.db import DatabaseError

from exceptions_app.errors import InvalidInput
from exceptions_app.models import ExceptionItem, GateDecision, PolicySource, Queue, Workflow
from exceptions_app.policy.document import PolicyInvalid
from exceptions_app.services.local_cache import local_caches_clear
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.replay import CHECKS, ReplayWindow, policy_replay
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import BILLING, billing_document
from tests.fixtures.replay import changed_draft, judge_some, live_tables_state, submit_batches, varied_body

pytestmark = pytest.mark.django_db
DECISIONS = 3000


@pytest.fixture
def history(agent_client, billing_queues):
    rng = random.Random(21)
    bodies = [varied_body(rng, index) for index in range(DECISIONS)]
    submit_batches(agent_client, bodies)
    supervisor = principal_ensure(name="sam", role="supervisor")
    judged = judge_some(supervisor, count=90)
    return bodies, judged


def _replay(document, **window):
    return policy_replay(
        workflow=Workflow.objects.select_related("current_policy").get(name=BILLING),
        document=document,
        window=ReplayWindow(**window),
        sample_limit=50,
    )


def _codes(reasons) -> set:
    return {reason["code"] for reason in reasons}


def test_replaying_the_published_policy_gives_a_diagonal_equal_to_the_recorded_verdicts(history):
    recorded = Counter(GateDecision.objects.values_list("verdict", flat=True))
    assert set(recorded) == {"proceed", "hold", "reject"}, "the history should hold every verdict"

    answer = _replay(billing_document(), limit=DECISIONS)

    assert answer["decisions"] == DECISIONS
    assert answer["changed"] == 0
    for current, row in answer["matrix"].items():
        for draft, count in row.items():
            assert count == (recorded[current] if current == draft else 0), (current, draft)
    assert answer["review_rate"]["current"] == answer["review_rate"]["draft"] == round(recorded["hold"] / DECISIONS, 6)
    assert answer["would_leak"] == 0
    assert answer["samples"] == []
    fired = Counter(
        code for reasons in GateDecision.objects.values_list("reasons", flat=True) for code in _codes(reasons)
    )
    for rule in answer["rules"] + answer["checks"]:
        assert rule["current"] == rule["draft"] == fired[rule["code"]], rule
    assert fired["output_schema_invalid"] > 0
    assert fired["lines_do_not_add_up"] > 0
    errors = sum(
        1 for reasons in GateDecision.objects.values_list("reasons", flat=True) for r in reasons if "error" in r
    )
    assert errors > 0, "some rules should have failed to evaluate"
    assert sum(rule["draft_errors"] for rule in answer["rules"]) == errors
    assert sum(band["decisions"] for band in answer["bands"]) == DECISIONS


def test_replaying_a_changed_policy_counts_what_the_gate_answers_once_it_is_published(history, agent_client):
    bodies, judged = history
    before = {
        correlation: (verdict, item_id)
        for correlation, verdict, item_id in GateDecision.objects.values_list("correlation_id", "verdict", "item__id")
    }
    resolution_of = dict(ExceptionItem.objects.exclude(resolution="").values_list("id", "resolution"))
    draft = changed_draft()

    answer = _replay(draft, limit=DECISIONS)

    policy_publish(document=draft, source=PolicySource.FILE)
    local_caches_clear()
    first_new = GateDecision.objects.order_by("-id").values_list("id", flat=True).first() + 1
    submit_batches(agent_client, bodies)
    after = list(GateDecision.objects.filter(id__gte=first_new).values_list("correlation_id", "verdict", "reasons"))
    assert len(after) == DECISIONS
    matrix = {current: Counter() for current in ("proceed", "hold", "reject")}
    fired, leaks, saved, lost = Counter(), 0, 0, 0
    for correlation, verdict, reasons in after:
        current, item_id = before[correlation]
        matrix[current][verdict] += 1
        fired.update(_codes(reasons))
        resolution = resolution_of.get(item_id)
        leaks += resolution in ("modify", "reject") and verdict == "proceed"
        saved += resolution == "approve" and verdict == "proceed"
        lost += resolution == "approve" and verdict == "hold"
    for current, row in answer["matrix"].items():
        for draft_verdict, count in row.items():
            assert count == matrix[current][draft_verdict], (current, draft_verdict)
    assert answer["changed"] > 0
    held = sum(row["hold"] for row in matrix.values())
    assert answer["review_rate"]["draft"] == round(held / DECISIONS, 6)
    for rule in answer["rules"] + answer["checks"]:
        assert rule["draft"] == fired[rule["code"]], rule
    assert {rule["code"]: rule["in_draft"] for rule in answer["rules"]}["currency_mismatch"] is False
    assert answer["would_leak"] == leaks
    assert (answer["judgements"]["effort_saved"], answer["judgements"]["effort_lost"]) == (saved, lost)
    assert leaks > 0
    assert len(judged) == 90
    samples = answer["samples"]
    assert samples
    assert all(s["current"]["verdict"] != s["draft"]["verdict"] for s in samples)
    assert samples[0]["would_leak"], "known mistakes come first among the samples"
    assert all(s["item_id"] is not None for s in samples if s["current"]["verdict"] == "hold")


def test_the_window_bounds_what_is_replayed(history):
    ids = list(GateDecision.objects.order_by("id").values_list("id", "created_at"))
    newest = ids[-1][1]

    assert _replay(billing_document(), limit=10)["decisions"] == 10
    assert _replay(billing_document(), since=newest)["decisions"] == sum(1 for _, at in ids if at >= newest)
    assert _replay(billing_document(), until=ids[0][1])["decisions"] == 0


def test_an_empty_window_answers_zeros(billing_workflow):
    answer = _replay(changed_draft())

    assert answer["decisions"] == 0
    assert all(count == 0 for row in answer["matrix"].values() for count in row.values())
    assert answer["review_rate"] == {"current": None, "draft": None}
    assert answer["would_leak"] == 0
    assert answer["samples"] == []
    assert {check["code"] for check in answer["checks"]} == set(CHECKS)


def test_an_invalid_draft_names_the_rule_and_the_parser_message(billing_workflow):
    draft = billing_document()
    draft["rules"][0]["when"] = "output.amount >"

    with pytest.raises(PolicyInvalid) as raised:
        _replay(draft)

    error = raised.value.errors[0]
    assert error.rule == "large_adjustment"
    assert "invalid CEL expression" in error.message
    assert len(error.message) > len("invalid CEL expression: ")


def test_a_draft_of_another_workflow_is_refused(billing_workflow):
    with pytest.raises(InvalidInput) as raised:
        _replay(billing_document(workflow="routing.other"))

    assert raised.value.fields[0]["path"] == "policy.workflow"


def test_a_draft_rule_that_fails_on_every_row_holds_them_all(history):
    draft = billing_document()
    draft["thresholds"] = {"auto_approve": 0.0}
    draft["rules"] = [{"code": "broken", "when": "output.no_such_field > 1.0", "severity": "low"}]

    answer = _replay(draft, limit=DECISIONS)

    broken = answer["rules"][0]
    assert broken["code"] == "broken"
    assert broken["draft"] == broken["draft_errors"] == DECISIONS
    assert sum(row["hold"] for row in answer["matrix"].values()) == DECISIONS


@pytest.mark.django_db(transaction=True)
def test_a_replay_changes_no_live_table_and_cannot_write(history):
    before = live_tables_state()

    answer = _replay(changed_draft(), limit=DECISIONS)

    assert answer["changed"] > 0
    assert live_tables_state() == before

    def write(_done):
        Queue.objects.create(name="written-during-replay", sla_seconds=60)

    with pytest.raises(DatabaseError, match="read-only"):
        policy_replay(
            workflow=Workflow.objects.get(name=BILLING),
            document=changed_draft(),
            window=ReplayWindow(limit=DECISIONS),
            progress=write,
            chunk_size=100,
        )
    assert not Queue.objects.filter(name="written-during-replay").exists()
