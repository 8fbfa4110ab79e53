"""Audit sampling in the gate, judging audit items, the accountability API and the drift breaker."""

import random

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from exceptions_app.accountability import sampling
from exceptions_app.models import (
    AuditEvent,
    BreakerState,
    Delivery,
    ExceptionItem,
    GateDecision,
    ItemKind,
    PolicySource,
    Workflow,
)
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import BILLING, billing_document, decision_body, hold

pytestmark = pytest.mark.django_db
ANSWER_KEYS = {
    "workflow",
    "window",
    "proceeds",
    "sampled",
    "judged",
    "unattended_error",
    "expected_wrong_unattended",
    "override_rate",
    "review_rate",
    "bands",
    "recommended_auto_approve",
    "tripped",
}
BAND_KEYS = {"lower", "upper", "decisions", "held", "sampled", "judged", "error_rate", "low", "high"}


def publish(**changes):
    return policy_publish(document=billing_document(**changes), source=PolicySource.FILE)[0]


def resolve(client, item_id: int, action: str) -> dict:
    assert client.post(f"/api/v1/exceptions/{item_id}/claim").status_code == 200
    body = {"action": action, **({"reason_code": "wrong_amount"} if action == "reject" else {})}
    if action == "modify":
        body["output"] = decision_body()["output"] | {"amount": 1.0}
    response = client.post(f"/api/v1/exceptions/{item_id}/resolve", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def audit_items():
    return ExceptionItem.objects.filter(kind=ItemKind.AUDIT)


def test_a_sampled_proceed_still_answers_proceed_and_an_audit_item_holds_its_captured_state(agent_client):
    version = publish(sampling={"proceed_rate": 1.0})

    response = agent_client.post("/api/v1/decisions", decision_body(confidence=0.97), format="json")

    assert response.status_code == 200, response.json()  # as for any proceed
    assert response.json()["verdict"] == "proceed"
    assert response.json()["exception"] is None
    item = audit_items().get()
    decision = GateDecision.objects.get()
    assert item.decision == decision
    assert item.policy_version == version  # the policy version is recorded
    assert item.sampling_probability == 1.0
    assert decision.audit_probability == 1.0
    assert item.proposal == decision_body()["output"]
    assert item.correlation_id == "run-42"
    assert item.expires_at is None  # an audit never expires into a fallback verdict
    assert item.reasons == [{"code": "audit_sample", "severity": "low", "verdict": "proceed", "probability": 1.0}]
    assert AuditEvent.objects.filter(item=item, action="raised").count() == 1


def test_an_unsampled_proceed_records_the_probability_it_was_drawn_with(agent_client):
    publish(sampling={"proceed_rate": 0.05, "strata": [{"below": 0.95, "proceed_rate": 1e-9}]})

    agent_client.post("/api/v1/decisions", decision_body(confidence=0.93), format="json")

    assert GateDecision.objects.get().audit_probability == 1e-9
    assert not audit_items().exists()


def test_holds_are_not_sampled_and_a_policy_without_sampling_records_no_probability(agent_client):
    publish(sampling={"proceed_rate": 1.0})
    held = agent_client.post("/api/v1/decisions", decision_body(confidence=0.5), format="json").json()
    assert held["verdict"] == "hold"
    assert ExceptionItem.objects.get().kind == ItemKind.HOLD
    publish()
    agent_client.post("/api/v1/decisions", decision_body(confidence=0.97, correlation_id="b"), format="json")
    assert GateDecision.objects.get(correlation_id="b").audit_probability is None
    assert not audit_items().exists()


def test_auto_rejects_are_sampled_at_the_reject_rate(agent_client):
    publish(sampling={"proceed_rate": 0.01, "reject_rate": 1.0})
    response = agent_client.post("/api/v1/decisions", decision_body(confidence=0.1), format="json")
    assert response.json()["verdict"] == "reject"
    assert audit_items().get().reasons[0]["verdict"] == "reject"


def test_an_idempotent_retry_is_not_sampled_twice(agent_client):
    publish(sampling={"proceed_rate": 1.0})
    for _ in range(3):
        response = agent_client.post(
            "/api/v1/decisions", decision_body(), format="json", HTTP_IDEMPOTENCY_KEY="retry-1"
        )
        assert response.json()["exception"] is None  # a replay never shows the audit copy
    batch = {"decisions": [decision_body(idempotency_key="retry-2"), decision_body(idempotency_key="retry-3")]}
    for _ in range(2):
        answers = agent_client.post("/api/v1/decisions/batch", batch, format="json").json()["results"]
        assert all(answer["exception"] is None for answer in answers)
    assert audit_items().count() == 3


def test_the_batch_path_samples_with_no_query_per_entry(agent_client):
    publish(sampling={"proceed_rate": 1.0})

    def queries_for(count: int, prefix: str) -> int:
        entries = [decision_body(correlation_id=f"{prefix}-{n}", idempotency_key=f"{prefix}-{n}") for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            response = agent_client.post("/api/v1/decisions/batch", {"decisions": entries}, format="json")
        assert response.status_code == 200, response.json()
        assert all(result["verdict"] == "proceed" for result in response.json()["results"])
        return len(captured)

    queries_for(2, "warm")  # the token and workflow lookups are cached afterwards
    assert queries_for(5, "few") == queries_for(60, "many")
    assert audit_items().count() == 67


def test_approving_an_audit_item_means_the_ai_was_right_and_delivers_nothing(agent_client, operator_client):
    publish(sampling={"proceed_rate": 1.0})
    agent_client.post("/api/v1/decisions", decision_body(), format="json")
    item = audit_items().get()

    resolved = resolve(operator_client, item.pk, "approve")

    assert resolved["kind"] == "audit"
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("action", ["reject", "modify"])
def test_a_wrong_audit_item_is_delivered_once_as_audit_failed_through_the_feed(agent_client, operator_client, action):
    publish(sampling={"proceed_rate": 1.0})
    agent_client.post("/api/v1/decisions", decision_body(), format="json")
    item = audit_items().get()

    resolve(operator_client, item.pk, action)

    delivery = Delivery.objects.get()
    assert delivery.item_id == item.pk
    assert delivery.payload["type"] == "audit.failed"
    assert delivery.payload["judgement"] == action
    assert delivery.payload["proposal"] == decision_body()["output"]
    assert delivery.payload["policy_version"] == item.policy_version.version
    Delivery.objects.update(created_at=delivery.created_at.replace(year=2000))  # past the feed's visibility lag
    feed = agent_client.get("/api/v1/resolutions").json()
    assert [entry["type"] for entry in feed["results"]] == ["audit.failed"]
    again = agent_client.get(f"/api/v1/resolutions?after={feed['cursor']}").json()
    assert again["results"] == []


def test_audit_judgements_do_not_count_as_overrides_of_holds(agent_client, operator_client):
    from exceptions_app.services.tallies import resolutions_tally
    from exceptions_app.stats import _workflow_rates

    publish(sampling={"proceed_rate": 1.0})
    agent_client.post("/api/v1/decisions", decision_body(), format="json")
    resolve(operator_client, audit_items().get().pk, "reject")
    resolve(operator_client, hold(agent_client), "approve")
    resolutions_tally()
    overall = next(
        row
        for row in _workflow_rates(Delivery.objects.get(payload__type="audit.failed").created_at.replace(year=2000))
        if row["band"] == "all"
    )
    assert overall["resolved"] == 1
    assert overall["override_rate"] == 0.0


def test_items_carry_their_kind_in_the_api(agent_client, supervisor_client):
    publish(sampling={"proceed_rate": 1.0})
    agent_client.post("/api/v1/decisions", decision_body(), format="json")
    hold(agent_client, correlation_id="held")
    kinds = {item["kind"] for item in supervisor_client.get("/api/v1/exceptions").json()["results"]}
    assert kinds == {"audit", "hold"}


def test_the_accountability_answer_has_exactly_the_documented_shape(agent_client, supervisor_client, operator_client):
    publish(sampling={"proceed_rate": 1.0}, targets={"max_unattended_error": 0.5})
    for number in range(6):
        agent_client.post("/api/v1/decisions", decision_body(correlation_id=f"p{number}"), format="json")
    for number, item in enumerate(audit_items()):
        resolve(operator_client, item.pk, "reject" if number == 0 else "approve")
    resolve(operator_client, hold(agent_client, correlation_id="h"), "modify")

    response = supervisor_client.get(f"/api/v1/workflows/{BILLING}/accountability")

    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == ANSWER_KEYS
    assert set(answer["window"]) == {"since", "until"}
    assert answer["proceeds"] == 6
    assert answer["sampled"] == 6
    assert answer["judged"] == 6
    assert answer["unattended_error"]["estimate"] == pytest.approx(1 / 6, abs=1e-6)
    assert answer["unattended_error"]["low"] < 1 / 6 < answer["unattended_error"]["high"]
    assert answer["expected_wrong_unattended"]["estimate"] == pytest.approx(1.0)
    assert answer["override_rate"] == 1.0
    assert answer["review_rate"] == pytest.approx(1 / 7, abs=1e-6)
    assert answer["tripped"] is False
    for band in answer["bands"]:
        assert set(band) == BAND_KEYS
    assert sum(band["decisions"] for band in answer["bands"]) == 7


@pytest.mark.parametrize(
    ("query", "message"),
    [("since=yesterday", "since"), ("since=2999-01-01T00:00:00Z", "past"), ("since=1990-01-01T00:00:00Z", "366")],
)
def test_a_bad_window_is_a_400_naming_since(supervisor_client, billing_workflow, query, message):
    response = supervisor_client.get(f"/api/v1/workflows/{BILLING}/accountability?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["path"] == "since"
    assert message in response.json()["error"]["message"] or message == "since"


def test_an_unknown_workflow_has_no_accountability(supervisor_client, billing_workflow):
    assert supervisor_client.get("/api/v1/workflows/no.such/accountability").status_code == 404
    assert supervisor_client.post("/api/v1/workflows/no.such/reset-breaker", {}, format="json").status_code == 404


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"sampling": {"proceed_rate": 0}}, "sampling.proceed_rate"),
        ({"sampling": {"reject_rate": 0.1}}, "sampling"),
        (
            {
                "sampling": {
                    "proceed_rate": 0.1,
                    "strata": [{"below": 0.9, "proceed_rate": 0.2}, {"below": 0.8, "proceed_rate": 0.2}],
                }
            },
            "sampling.strata[1].below",
        ),
        ({"targets": {"max_unattended_error": 1.5}}, "targets.max_unattended_error"),
        ({"breaker": {"threshold": 5}}, "breaker"),
        ({"breaker": {"override": {"baseline": 0.3, "detect": 0.2}}}, "breaker.override.detect"),
        ({"breaker": {"audit": {"baseline": 0.02, "detect": 0.1}}}, "breaker.audit"),
        (  # too thin a sample for the breaker to trip within 300 unattended decisions
            {"sampling": {"proceed_rate": 0.1}, "breaker": {"audit": {"baseline": 0.02, "detect": 0.2}}},
            "sampling.proceed_rate",
        ),
        (
            {
                "sampling": {"proceed_rate": 0.5, "strata": [{"below": 0.95, "proceed_rate": 0.2}]},
                "breaker": {"audit": {"baseline": 0.02, "detect": 0.2}},
            },
            "sampling.strata[0].proceed_rate",
        ),
        ({"sampling": {"proceed_rate": 0.1, "extra": 1}}, "sampling"),
        ({"targets": {"max_unattended_error": 0}}, "targets.max_unattended_error"),
        ({"breaker": {"override": {"baseline": 0, "detect": 0.2}}}, "breaker.override.baseline"),
        ({"breaker": {"override": {"baseline": 0.1, "detect": 0.2}, "threshold": 0}}, "breaker.threshold"),
    ],
)
def test_policy_accountability_keys_are_validated_with_clear_errors(supervisor_client, billing_workflow, changes, path):
    response = supervisor_client.put(f"/api/v1/workflows/{BILLING}", billing_document(**changes), format="json")
    assert response.status_code == 400, response.json()
    assert path in [field["path"] for field in response.json()["error"]["fields"]], response.json()
    assert Workflow.objects.get(name=BILLING).current_policy.version == 1


def _trip(agent_client, operator_client) -> None:
    publish(breaker={"override": {"baseline": 0.1, "detect": 0.6}, "threshold": 2.0})
    for number in range(2):
        resolve(operator_client, hold(agent_client, correlation_id=f"t{number}"), "reject")


def test_the_breaker_trips_on_a_rising_override_rate_and_then_holds_every_output(agent_client, operator_client):
    _trip(agent_client, operator_client)

    workflow = Workflow.objects.get(name=BILLING)
    assert workflow.tripped_at is not None
    assert "override" in BreakerState.objects.get(workflow=workflow).tripped_reason
    assert AuditEvent.objects.filter(action="workflow_tripped", workflow=workflow).count() == 1
    event = Delivery.objects.get(payload__type="workflow.tripped")
    assert event.item_id is None
    answer = agent_client.post("/api/v1/decisions", decision_body(confidence=0.99), format="json").json()
    assert answer["verdict"] == "hold"
    assert "breaker_tripped" in [reason["code"] for reason in answer["reasons"]]
    rejected = agent_client.post("/api/v1/decisions", decision_body(confidence=0.05), format="json").json()
    assert rejected["verdict"] == "hold"


def test_the_breaker_is_off_by_default(agent_client, operator_client):
    for number in range(5):
        resolve(operator_client, hold(agent_client, correlation_id=f"o{number}"), "reject")
    assert Workflow.objects.get(name=BILLING).tripped_at is None
    assert not BreakerState.objects.exists()


def test_a_tripped_breaker_shows_in_metrics_and_a_supervisor_resets_it_audited(
    agent_client, operator_client, supervisor_client, client
):
    _trip(agent_client, operator_client)
    metrics = client.get("/metrics").content.decode()
    assert f'tollgate_workflow_tripped{{workflow="{BILLING}"}} 1.0' in metrics
    assert supervisor_client.get(f"/api/v1/workflows/{BILLING}/accountability").json()["tripped"] is True

    response = supervisor_client.post(
        f"/api/v1/workflows/{BILLING}/reset-breaker", {"note": "model rolled back"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"workflow": BILLING, "tripped": False}
    event = AuditEvent.objects.get(action="breaker_reset")
    assert event.actor_label == "sam"
    assert event.payload["note"] == "model rolled back"
    assert BreakerState.objects.get().override_score == 0.0
    assert f'tollgate_workflow_tripped{{workflow="{BILLING}"}} 0.0' in client.get("/metrics").content.decode()
    answer = agent_client.post(
        "/api/v1/decisions", decision_body(confidence=0.99, correlation_id="after"), format="json"
    )
    assert answer.json()["verdict"] == "proceed"
    again = supervisor_client.post(f"/api/v1/workflows/{BILLING}/reset-breaker", {}, format="json")
    assert again.status_code == 409


def test_an_end_to_end_simulation_through_the_api_estimates_the_true_unattended_rate(
    agent_client, operator_client, supervisor_client
):
    """Known truth: each output is wrong with a probability that falls with its confidence; the
    reviewer judges every audit item by that truth. Smaller than the unit simulation, same checks."""
    publish(
        sampling={"proceed_rate": 0.3, "strata": [{"below": 0.95, "proceed_rate": 0.8}]},
        targets={"max_unattended_error": 0.5},
    )
    sampling._draws.seed(7)
    rng = random.Random(7)
    truth: dict[str, bool] = {}
    proceeds_wrong = proceeds = 0
    for batch in range(4):
        entries = []
        for number in range(100):
            confidence = round(rng.uniform(0.9, 0.999), 3)
            name = f"sim-{batch}-{number}"
            truth[name] = rng.random() < (0.3 if confidence < 0.95 else 0.05)
            entries.append(decision_body(confidence=confidence, correlation_id=name))
        results = agent_client.post("/api/v1/decisions/batch", {"decisions": entries}, format="json").json()["results"]
        for entry, result in zip(entries, results, strict=True):
            if result["verdict"] == "proceed":
                proceeds += 1
                proceeds_wrong += truth[entry["correlation_id"]]
    for item in audit_items():
        resolve(operator_client, item.pk, "reject" if truth[item.correlation_id] else "approve")

    answer = supervisor_client.get(f"/api/v1/workflows/{BILLING}/accountability").json()

    true_rate = proceeds_wrong / proceeds
    assert answer["proceeds"] == proceeds
    assert answer["judged"] == audit_items().count()
    assert answer["unattended_error"]["low"] <= true_rate <= answer["unattended_error"]["high"]
    unweighted = sum(truth[i.correlation_id] for i in audit_items()) / audit_items().count()
    assert abs(answer["unattended_error"]["estimate"] - true_rate) < abs(unweighted - true_rate)


@pytest.mark.parametrize("name", ["no.such", "bad%00name", "x" * 300])
def test_the_accountability_page_of_a_workflow_that_cannot_exist_is_404(client, billing_workflow, name):
    from exceptions_app.services.tokens import principal_ensure

    client.force_login(principal_ensure(name="sam", role="supervisor").user)
    assert client.get(f"/workflows/{name}/accountability").status_code == 404


def test_a_supervisor_publishes_the_recommended_threshold_from_the_page_audited(client, billing_workflow):
    from exceptions_app.services.tokens import principal_ensure

    client.force_login(principal_ensure(name="sam", role="supervisor").user)
    page = client.get(f"/workflows/{BILLING}/accountability")
    assert page.status_code == 200
    assert b"reliability-chart" in page.content
    assert b"<script" not in page.content.split(b"<main")[-1]  # the page draws with SVG, no script

    response = client.post(f"/workflows/{BILLING}/accountability/publish-threshold", {"auto_approve": "0.85"})

    assert response.status_code == 302
    workflow = Workflow.objects.select_related("current_policy").get(name=BILLING)
    assert workflow.current_policy.document["thresholds"]["auto_approve"] == 0.85
    assert workflow.current_policy.published_by.username == "sam"
    event = AuditEvent.objects.get(action="threshold_published")
    assert (event.payload["from"], event.payload["to"]) == (0.9, 0.85)
    refused = client.post(f"/workflows/{BILLING}/accountability/publish-threshold", {"auto_approve": "0.1"})
    assert refused.status_code == 302  # below auto_reject: refused with a message, nothing published
    assert Workflow.objects.get(name=BILLING).current_policy.version == workflow.current_policy.version


def test_an_audit_item_is_marked_in_the_console_with_right_and_wrong(agent_client, operator_client, client):
    publish(sampling={"proceed_rate": 1.0})
    agent_client.post("/api/v1/decisions", decision_body(), format="json")
    item = audit_items().get()
    assert operator_client.post(f"/api/v1/exceptions/{item.pk}/claim").status_code == 200
    client.force_login(operator_client.principal.user)

    page = client.get(f"/items/{item.pk}").content.decode()

    assert 'data-testid="kind-audit"' in page
    assert "Right <kbd>a</kbd>" in page
    assert "Wrong <kbd>r</kbd>" in page
    assert "sampled for audit with probability" in page


def test_the_tripped_event_reaches_agents_that_read_the_feed(agent_client, operator_client):
    _trip(agent_client, operator_client)
    Delivery.objects.update(created_at=Delivery.objects.earliest("created_at").created_at.replace(year=2000))

    entries = agent_client.get("/api/v1/resolutions").json()["results"]

    tripped = [entry for entry in entries if entry["type"] == "workflow.tripped"]
    assert len(tripped) == 1
    assert tripped[0]["workflow"] == BILLING
    assert "override" in tripped[0]["reason"]


def test_the_console_search_shows_each_items_kind_and_filters_by_it(agent_client, billing_queues):
    publish(sampling={"proceed_rate": 1.0})
    agent_client.post("/api/v1/decisions", decision_body(confidence=0.97), format="json")
    held = hold(agent_client, correlation_id="held-one")
    audit = audit_items().get()
    console = Client()
    console.force_login(principal_ensure(name="olga", role="operator", teams=["billing-team"]).user)

    everything = console.get("/items/search", {"status": "open"})
    audits = console.get("/items/search", {"status": "open", "kind": "audit"})
    holds = console.get("/items/search", {"kind": "hold"})

    assert {item.pk for item in everything.context["items"]} == {held, audit.pk}
    assert b'<span class="badge kind-audit">audit</span>' in everything.content
    assert b'<span class="badge kind-hold">hold</span>' in everything.content
    assert [item.pk for item in audits.context["items"]] == [audit.pk]
    assert b"kind-hold" not in audits.content
    assert [item.pk for item in holds.context["items"]] == [held]
    assert console.get("/items/search", {"kind": "nonsense"}).context["items"] == []
