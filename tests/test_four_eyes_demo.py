"""The demo shows four eyes: the shipped billing policy gives adjustments above 10,000 at risk to two
approvers, seed_demo has two finance operators to be them (alice and erin), and the simulated
agents' auto-operator and auto-checker are each other's second pair of eyes."""

import io
import random
from collections import OrderedDict
from threading import Lock

import pytest
from django.core.management import call_command

from exceptions_app.client import TollgateClient
from exceptions_app.management.commands.simulate_agents import Command as Simulation
from exceptions_app.models import Delivery, ExceptionItem, ItemStatus
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, client_for, decision_body

LARGE = {"value_at_risk": "20000.00"}


def seeded_agent():
    call_command("seed_demo", stdout=io.StringIO())
    return client_for("demo-bot", "agent", workflows=[BILLING])


def held(agent, **changes) -> int:
    response = agent.post("/api/v1/decisions", decision_body(confidence=0.5, **changes), format="json")
    return response.json()["exception"]["id"]


@pytest.mark.django_db
def test_alice_and_erin_are_the_four_eyes_of_a_large_billing_adjustment(client):
    agent = seeded_agent()
    item_id = held(agent, **LARGE)

    for name in ("alice", "erin"):
        client.login(username=name, password="tollgate-operator")
        assert client.post(f"/items/{item_id}/claim").status_code == 302
        client.post(f"/items/{item_id}/approve", {"then": "stay"})
        client.logout()
        if name == "alice":
            assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.OPEN

    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.RESOLVED
    [delivery] = Delivery.objects.filter(item_id=item_id)
    assert [approver["by"] for approver in delivery.payload["approvers"]] == ["alice", "erin"]


def _simulation() -> Simulation:
    simulation = Simulation(stdout=io.StringIO())
    simulation.rng = random.Random(7)
    simulation.truth, simulation.truth_lock = OrderedDict(), Lock()
    return simulation


@pytest.mark.django_db(transaction=True)
def test_the_auto_operator_and_the_auto_checker_resolve_a_large_adjustment_together(live_server):
    agent = seeded_agent()
    item_id = held(agent, correlation_id="large-1", **LARGE)
    simulation = _simulation()
    simulation.truth["large-1"] = False  # a right output: both approve it

    for name in ("auto-operator", "auto-operator", "auto-checker"):  # the operator cannot take it twice
        _, token = token_create(principal=principal_ensure(name=name, role="supervisor"))
        with TollgateClient(live_server.url, token) as tollgate:
            simulation._auto_round(tollgate, name, 1.0, (0.0, 0.0))

    said = simulation.stdout.getvalue()
    assert f"auto-operator: approve on item {item_id} (1 of 2 approvals): it waits for a second person" in said
    assert f"auto-checker: resolved item {item_id}: approve" in said
    assert ExceptionItem.objects.get(pk=item_id).status == ItemStatus.RESOLVED
    approvers = Delivery.objects.get(item_id=item_id).payload["approvers"]
    assert [approver["by"] for approver in approvers] == ["auto-operator", "auto-checker"]
