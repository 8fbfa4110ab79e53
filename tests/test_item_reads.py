"""The operator's hot path reads an item in statements PostgreSQL plans cheaply, and keeps its visibility rule.

The soak found single-item reads to be its costliest statement: the visibility subquery plus eight tables made
PostgreSQL spend about 5.5 ms planning each (0.2 ms running it), three times per claim-and-resolve. These tests
pin the shape (no statement of the path reads more than six tables) and that the cheaper reads still refuse
what is not the caller's."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.fixtures.gate import client_for, hold

MAX_TABLES = 6  # the item and five related rows: PostgreSQL plans that in about 0.7 ms


def _tables_in(sql: str) -> int:
    return 1 + len(re.findall(r"\bJOIN\b", sql or ""))


@pytest.fixture
def outsider(billing_queues):
    from exceptions_app.models import Queue, Team

    team, _ = Team.objects.get_or_create(name="elsewhere")
    Queue.objects.create(name="elsewhere", sla_seconds=600).teams.add(team)
    return client_for("oscar", "operator", teams=["elsewhere"])


def test_claim_next_and_resolve_read_at_most_six_tables_in_any_statement(agent_client, operator_client):
    item_id = hold(agent_client)
    with CaptureQueriesContext(connection) as queries:
        claimed = operator_client.post("/api/v1/queues/billing/claim-next")
        resolved = operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")
    assert claimed.status_code == 200
    assert claimed.json()["id"] == item_id
    assert claimed.json()["claim"]["claimed_by"] == "olga"
    assert claimed.json()["captured"]["agent"]  # loaded on demand, still shown
    assert resolved.status_code == 200
    assert resolved.json()["resolution"]["resolved_by"] == "olga"
    widest = max(queries.captured_queries, key=lambda query: _tables_in(query["sql"]))
    assert _tables_in(widest["sql"]) <= MAX_TABLES, widest["sql"]


def test_an_operator_of_another_team_gets_404_on_every_item_read_and_action(agent_client, operator_client, outsider):
    item_id = hold(agent_client)
    assert outsider.get(f"/api/v1/exceptions/{item_id}").status_code == 404
    assert outsider.post(f"/api/v1/exceptions/{item_id}/claim", {}, format="json").status_code == 404
    assert outsider.post(f"/api/v1/exceptions/{item_id}/comments", {"text": "hi"}, format="json").status_code == 404
    assert operator_client.post(f"/api/v1/exceptions/{item_id}/claim", {}, format="json").status_code == 200
    refused = outsider.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")
    assert refused.status_code == 404
    assert operator_client.get(f"/api/v1/exceptions/{item_id}").json()["status"] == "claimed"


def test_an_agent_sees_its_own_workflows_items_only(agent_client, billing_queues):
    item_id = hold(agent_client)
    other_agent = client_for("stranger", "agent", workflows=[])
    assert agent_client.get(f"/api/v1/exceptions/{item_id}").status_code == 200
    assert other_agent.get(f"/api/v1/exceptions/{item_id}").status_code == 404
    assert agent_client.get("/api/v1/exceptions/999999999").status_code == 404


@pytest.mark.parametrize(
    "decision",
    [{"action": "approve"}, {"action": "reject", "reason_code": "wrong_total"}, {"action": "escalate", "note": "big"}],
)
def test_the_resolve_answer_is_the_item_as_a_fresh_read_shows_it(agent_client, operator_client, decision):
    """The resolve view answers with the item item_resolve returned, not a second read: the two must agree."""
    item_id = hold(agent_client)
    assert operator_client.post(f"/api/v1/exceptions/{item_id}/claim", {}, format="json").status_code == 200
    answered = operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", decision, format="json")
    assert answered.status_code == 200
    assert answered.json() == operator_client.get(f"/api/v1/exceptions/{item_id}").json()
