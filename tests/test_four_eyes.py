"""Four eyes through the API: a policy's ``approvals`` rule asks for N distinct approvers of the items
its condition matches. The first approval sends the item back to its queue for someone else; the
same person (or, under ``distinct: teams``, the same team) never counts twice; a reject ends it; a
modify resets the approvals; every vote is audited; the delivered resolution lists the approvers."""

import pytest
from django.utils import timezone

from exceptions_app.errors import VoteRefused
from exceptions_app.models import AuditEvent, Delivery, ExceptionItem, PolicySource, Queue, Team, Vote
from exceptions_app.services.consensus import _vote_insert, consensus_vote
from exceptions_app.services.items import item_reassign, item_resolve
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.undo import item_resolution_undo, undo_window
from tests.fixtures.gate import billing_document, client_for, hold, invoice_output

pytestmark = pytest.mark.django_db

ABOVE = "20000.00"


def item_url(item_id: int, action: str = "") -> str:
    return f"/api/v1/exceptions/{item_id}" + (f"/{action}" if action else "")


@pytest.fixture
def four_eyes(billing_queues):
    """The billing policy asking two approvers for anything above 10,000 at risk."""
    rule = {"when": "value_at_risk > 10000.0", "required": 2}
    policy_publish(document=billing_document(approvals=[rule]), source=PolicySource.FILE)


def decide(client, item_id: int, action: str = "approve", **body):
    claimed = client.post(item_url(item_id, "claim"))
    assert claimed.status_code == 200, claimed.json()
    return client.post(item_url(item_id, "resolve"), {"action": action, **body}, format="json")


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_two_distinct_approvers_resolve_and_the_delivery_names_both(
    four_eyes, agent_client, operator_client, second_operator_client
):
    item_id = hold(agent_client, value_at_risk=ABOVE)

    first = decide(operator_client, item_id, note="looks right")

    assert first.status_code == 200
    assert (first.json()["status"], first.json()["resolution"]) == ("open", None)
    consensus = first.json()["consensus"]
    assert (consensus["kind"], consensus["approvals"], consensus["required"], consensus["waiting"]) == (
        "approvals",
        1,
        2,
        True,
    )
    assert [vote["by"] for vote in consensus["votes"]] == ["olga"]
    assert second_operator_client.get(item_url(item_id)).json()["consensus"] == consensus  # what otto reads first
    assert "consensus" not in agent_client.get(item_url(item_id)).json()  # the agent waits; the votes are not its
    assert not Delivery.objects.filter(item_id=item_id).exists()

    second = decide(second_operator_client, item_id)

    assert second.status_code == 200
    assert second.json()["status"] == "resolved"
    assert second.json()["resolution"]["outcome"] == "approve"
    [delivery] = Delivery.objects.filter(item_id=item_id)
    assert [(approver["by"], approver["vote"]) for approver in delivery.payload["approvers"]] == [
        ("olga", "approve"),
        ("otto", "approve"),
    ]
    actions = list(AuditEvent.objects.filter(item_id=item_id).values_list("action", flat=True))
    assert actions == ["raised", "claimed", "voted", "awaiting_approval", "claimed", "voted", "resolved"]
    resolved = AuditEvent.objects.get(item_id=item_id, action="resolved")
    assert [approver["by"] for approver in resolved.payload["approvers"]] == ["olga", "otto"]


def test_the_first_approver_cannot_take_the_item_again(four_eyes, agent_client, operator_client):
    item_id = hold(agent_client, value_at_risk=ABOVE)
    decide(operator_client, item_id)

    again = operator_client.post(item_url(item_id, "claim"))
    next_one = operator_client.post("/api/v1/queues/billing/claim-next")

    assert again.status_code == 409
    assert error_code(again) == "voter_already_counted"
    assert next_one.status_code == 204  # the only open item is one she approved
    assert Vote.objects.filter(item_id=item_id).count() == 1


def test_a_supervisor_cannot_hand_the_item_back_to_its_first_approver(
    four_eyes, agent_client, operator_client, supervisor_client
):
    item_id = hold(agent_client, value_at_risk=ABOVE)
    decide(operator_client, item_id)

    with pytest.raises(VoteRefused) as refused:
        item_reassign(item_id=item_id, principal=supervisor_client.principal, to_username="olga")

    assert refused.value.code == "voter_already_counted"
    assert ExceptionItem.objects.get(pk=item_id).claimed_by is None


def test_a_vote_by_the_same_person_is_refused_by_the_database_too(four_eyes, agent_client, operator_client):
    item_id = hold(agent_client, value_at_risk=ABOVE)
    decide(operator_client, item_id)
    item = ExceptionItem.objects.select_related("policy_version").get(pk=item_id)

    with pytest.raises(VoteRefused) as refused:
        # Past the service's own check (as a racing second request would be): the constraint refuses.
        _vote_insert(
            item=item,
            purpose="approval",
            seat=2,
            voter=operator_client.principal.user,
            resolution="approve",
            created_at=timezone.now(),
        )

    assert refused.value.code == "voter_already_counted"


def test_one_approval_is_enough_below_the_condition(four_eyes, agent_client, operator_client):
    item_id = hold(agent_client, value_at_risk="50.00")

    response = decide(operator_client, item_id)

    assert response.json()["status"] == "resolved"
    assert response.json()["consensus"] is None
    [delivery] = Delivery.objects.filter(item_id=item_id)
    assert [approver["by"] for approver in delivery.payload["approvers"]] == ["olga"]


def test_a_reject_by_the_second_approver_ends_it(four_eyes, agent_client, operator_client, second_operator_client):
    item_id = hold(agent_client, value_at_risk=ABOVE)
    decide(operator_client, item_id)

    response = decide(second_operator_client, item_id, "reject", reason_code="wrong_amount")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["resolution"]["outcome"]) == ("resolved", "reject")
    [delivery] = Delivery.objects.filter(item_id=item_id)
    assert delivery.payload["verdict"] == "reject"
    assert [(a["by"], a["vote"]) for a in delivery.payload["approvers"]] == [("olga", "approve"), ("otto", "reject")]


def test_a_policy_can_ask_for_more_than_one_rejection(
    billing_queues, agent_client, operator_client, second_operator_client
):
    rule = {"when": "value_at_risk > 10000.0", "required": 2, "rejections_required": 2}
    policy_publish(document=billing_document(approvals=[rule]), source=PolicySource.FILE)
    item_id = hold(agent_client, value_at_risk=ABOVE)

    first = decide(operator_client, item_id, "reject", reason_code="wrong_amount")
    second = decide(second_operator_client, item_id)

    assert first.json()["status"] == "open"
    assert second.json()["status"] == "open"  # one approval, one rejection: neither side has its two
    third = decide(client_for("oona", "operator", teams=["billing-team"]), item_id)
    assert (third.json()["status"], third.json()["resolution"]["outcome"]) == ("resolved", "approve")


def test_a_modify_resets_the_approvals_and_the_others_approve_the_edit(
    four_eyes, agent_client, operator_client, second_operator_client
):
    item_id = hold(agent_client, value_at_risk=ABOVE)
    decide(operator_client, item_id)
    edited = invoice_output(amount=99.0)

    response = decide(second_operator_client, item_id, "modify", output=edited)

    assert response.json()["status"] == "open"
    assert [(vote["by"], vote["vote"]) for vote in response.json()["consensus"]["votes"]] == [("otto", "modify")]
    reset = AuditEvent.objects.get(item_id=item_id, action="approvals_reset")
    assert [vote["by"] for vote in reset.payload["withdrawn"]] == ["olga"]

    final = decide(operator_client, item_id)  # olga's first approval was of another output: she may approve this one

    assert final.json()["status"] == "resolved"
    assert final.json()["resolution"]["outcome"] == "modify"
    assert final.json()["resolution"]["final_output"] == edited
    [delivery] = Delivery.objects.filter(item_id=item_id)
    assert delivery.payload["final_output"] == edited
    assert [(a["by"], a["vote"]) for a in delivery.payload["approvers"]] == [("otto", "modify"), ("olga", "approve")]


def test_distinct_teams_refuse_two_people_of_one_team(
    billing_queues, agent_client, operator_client, second_operator_client
):
    rule = {"when": "value_at_risk > 10000.0", "required": 2, "distinct": "teams"}
    policy_publish(document=billing_document(approvals=[rule]), source=PolicySource.FILE)
    item_id = hold(agent_client, value_at_risk=ABOVE)
    decide(operator_client, item_id)

    same_team = decide(second_operator_client, item_id)

    assert same_team.status_code == 409
    assert error_code(same_team) == "team_already_counted"
    assert Vote.objects.filter(item_id=item_id).count() == 1
    assert ExceptionItem.objects.get(pk=item_id).claimed_by.username == "otto"  # nothing was written
    second_operator_client.post(item_url(item_id, "release"))
    Queue.objects.get(name="billing").teams.add(Team.objects.create(name="finance-control"))
    controller = client_for("fiona", "operator", teams=["finance-control"])

    other_team = decide(controller, item_id)

    assert other_team.json()["status"] == "resolved"
    teams = [approver["team"] for approver in Delivery.objects.get(item_id=item_id).payload["approvers"]]
    assert teams == ["billing-team", "finance-control"]


def test_the_agents_own_principal_never_counts(four_eyes, agent_client):
    item_id = hold(agent_client, value_at_risk=ABOVE)
    item = ExceptionItem.objects.select_related("policy_version").get(pk=item_id)

    with pytest.raises(VoteRefused) as refused:
        consensus_vote(
            item=item,
            principal=agent_client.principal,
            action="approve",
            now=timezone.now(),
            output=item.proposal,
            reason_code="",
            note="",
        )

    assert refused.value.code == "agent_cannot_approve"
    assert not Vote.objects.filter(item_id=item_id).exists()


def test_undoing_the_deciding_approval_withdraws_that_vote_only(
    four_eyes, agent_client, operator_client, second_operator_client, settings
):
    settings.TOLLGATE_UNDO_SECONDS = 30
    item_id = hold(agent_client, value_at_risk=ABOVE)
    decide(operator_client, item_id)
    second_operator_client.post(item_url(item_id, "claim"))

    item_resolve(
        item_id=item_id, principal=second_operator_client.principal, action="approve", hold_delivery=undo_window()
    )
    item_resolution_undo(item_id=item_id, principal=second_operator_client.principal)

    assert list(Vote.objects.filter(item_id=item_id).values_list("voter__username", flat=True)) == ["olga"]
    assert ExceptionItem.objects.get(pk=item_id).claimed_by.username == "otto"
    assert not Delivery.objects.filter(item_id=item_id).exists()
