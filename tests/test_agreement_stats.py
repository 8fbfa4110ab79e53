"""Agreement figures from real blind judgements, at /api/v1/stats/agreement and on the dashboard,
checked against a hand-worked computation of the same fixed judgements."""

import pytest

from exceptions_app.models import PolicySource
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import BILLING, billing_document, client_for, hold

pytestmark = pytest.mark.django_db

# (olga's judgement, otto's judgement, the adjudicator's decision when they disagree)
JUDGED = [("approve", "approve", None), ("reject", "reject", None), ("approve", "reject", "approve")]
JUDGED += [("approve", "approve", None)]


def decide(client, item_id: int, action: str):
    assert client.post(f"/api/v1/exceptions/{item_id}/claim").status_code == 200
    body = {"action": action, **({"reason_code": "wrong_amount"} if action == "reject" else {})}
    return client.post(f"/api/v1/exceptions/{item_id}/resolve", body, format="json")


@pytest.fixture
def judged(billing_queues, agent_client, operator_client, second_operator_client):
    review = {"share": 1.0, "judgements": 2, "adjudication_queue": "billing-senior"}
    policy_publish(document=billing_document(blind_review=review), source=PolicySource.FILE)
    adjudicator = client_for("ada", "operator", teams=["billing-team"])
    for olga, otto, final in JUDGED:
        item_id = hold(agent_client)
        decide(operator_client, item_id, olga)
        decide(second_operator_client, item_id, otto)
        if final:
            assert decide(adjudicator, item_id, final).json()["status"] == "resolved"


def test_agreement_per_workflow_and_per_operator_matches_the_hand_computation(judged, supervisor_client):
    response = supervisor_client.get("/api/v1/stats/agreement")

    assert response.status_code == 200
    rows = {(row["scope"], row["operator"]): row for row in response.json()["rows"]}
    workflow = rows[("workflow", None)]
    # Pairs agree on 3 of 4 items: 0.75. Judgements: 5 approve, 3 reject of 8, so chance agreement is
    # (5/8)^2 + (3/8)^2 = 0.53125 and Fleiss' kappa (0.75 - 0.53125) / (1 - 0.53125) = 0.4667.
    assert workflow["workflow"] == BILLING
    assert (workflow["items"], workflow["judgements"], workflow["unanimous_items"]) == (4, 8, 3)
    assert workflow["percent_agreement"] == pytest.approx(0.75)
    assert workflow["kappa"] == pytest.approx(0.4667, abs=1e-4)
    assert workflow["kappa_kind"] == "fleiss"
    # olga matched the final decision every time: 4/4, Cohen's kappa 1. otto matched 3 of 4; his
    # marginals 2/4 approve, 2/4 reject against the final 3/4, 1/4: chance 0.5, kappa (0.75 - 0.5) / 0.5.
    olga, otto = rows[("operator", "olga")], rows[("operator", "otto")]
    assert (olga["items"], olga["percent_agreement"], olga["kappa"]) == (4, 1.0, 1.0)
    assert (otto["percent_agreement"], otto["kappa"]) == (0.75, 0.5)
    assert otto["kappa_kind"] == "cohen"
    low, high = otto["percent_agreement_interval"]
    assert low < 0.75 < high  # four items: a wide interval, so the figure is not over-read
    assert high - low > 0.4


def test_the_dashboard_shows_the_agreement_table(judged, client, django_user_model):
    from exceptions_app.services.tokens import principal_ensure

    supervisor = principal_ensure(name="sam", role="supervisor").user
    client.force_login(supervisor)

    page = client.get("/dashboard").content.decode()

    assert 'data-testid="agreement"' in page
    assert "0.47" in page  # the workflow's Fleiss' kappa
    assert "otto" in page
