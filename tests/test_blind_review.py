"""Blind multi-review through the API: a policy's ``blind_review`` asks k people to judge a share of
items independently. Judgements stay hidden from the judges (and everyone) until all are in; when
they agree the item resolves, when they disagree it goes to the adjudication queue, where someone
who did not judge it sees every judgement and decides. Only the final decision is delivered."""

import pytest

from exceptions_app.models import AuditEvent, Delivery, ExceptionItem, ItemKind, PolicySource, Vote
from exceptions_app.policy.consensus import blind_draw
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import billing_document, client_for, decision_body, hold

pytestmark = pytest.mark.django_db


def item_url(item_id: int, action: str = "") -> str:
    return f"/api/v1/exceptions/{item_id}" + (f"/{action}" if action else "")


@pytest.fixture
def blind(billing_queues):
    """Every billing item judged blind by two people; disagreement goes to billing-senior."""
    review = {"share": 1.0, "judgements": 2, "adjudication_queue": "billing-senior"}
    policy_publish(document=billing_document(blind_review=review), source=PolicySource.FILE)


@pytest.fixture
def adjudicator(billing_queues):
    return client_for("ada", "operator", teams=["billing-team"])


def judge(client, item_id: int, action: str = "approve", **body):
    claimed = client.post(item_url(item_id, "claim"))
    assert claimed.status_code == 200, claimed.json()
    return client.post(item_url(item_id, "resolve"), {"action": action, **body}, format="json")


def test_judgements_stay_hidden_until_all_are_in_and_agreement_resolves(
    blind, agent_client, operator_client, second_operator_client
):
    item_id = hold(agent_client)

    first = judge(operator_client, item_id, note="fine by me")

    assert first.json()["status"] == "open"
    assert first.json()["consensus"] == {
        "kind": "blind_review",
        "required": 2,
        "judgements": 1,
        "adjudication": False,
        "votes": [],
        "revealed": False,
    }
    seen_by_the_second = second_operator_client.post(item_url(item_id, "claim")).json()
    assert seen_by_the_second["consensus"]["votes"] == []
    timeline = second_operator_client.get(item_url(item_id, "timeline")).json()
    judged = [event for event in timeline if event["action"] == "judged"]
    assert judged
    assert all("vote" not in event["payload"] and "note" not in event["payload"] for event in judged)
    assert "fine by me" not in str(timeline)
    assert not Delivery.objects.filter(item_id=item_id).exists()

    second = judge(second_operator_client, item_id)

    assert (second.json()["status"], second.json()["resolution"]["outcome"]) == ("resolved", "approve")
    assert [vote["by"] for vote in second.json()["consensus"]["votes"]] == ["olga", "otto"]
    assert second.json()["consensus"]["revealed"] is True
    assert Delivery.objects.filter(item_id=item_id).count() == 1


def test_disagreement_goes_to_adjudication_and_only_the_final_decision_is_delivered(
    blind, agent_client, operator_client, second_operator_client, adjudicator
):
    item_id = hold(agent_client)
    judge(operator_client, item_id)

    second = judge(second_operator_client, item_id, "reject", reason_code="wrong_amount")

    assert second.json()["status"] == "open"
    assert second.json()["queue"] == "billing-senior"
    consensus = second.json()["consensus"]
    assert consensus["adjudication"] is True
    assert [(vote["by"], vote["vote"]) for vote in consensus["votes"]] == [("olga", "approve"), ("otto", "reject")]
    assert AuditEvent.objects.filter(item_id=item_id, action="sent_to_adjudication").exists()
    for judge_client in (operator_client, second_operator_client):  # a judge never adjudicates their own item
        refused = judge_client.post(item_url(item_id, "claim"))
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "voter_already_counted")
    assert not Delivery.objects.filter(item_id=item_id).exists()

    final = judge(adjudicator, item_id, "reject", reason_code="wrong_amount", note="the amount is off")

    assert (final.json()["status"], final.json()["resolution"]["outcome"]) == ("resolved", "reject")
    assert final.json()["resolution"]["resolved_by"] == "ada"
    [delivery] = Delivery.objects.filter(item_id=item_id)
    assert (delivery.payload["verdict"], delivery.payload["resolver"]) == ("reject", "ada")
    assert "judgements" not in delivery.payload
    assert "olga" not in str(delivery.payload)
    assert AuditEvent.objects.get(item_id=item_id, action="resolved").payload["adjudicated"] is True


def test_two_different_edits_are_a_disagreement(blind, agent_client, operator_client, second_operator_client):
    item_id = hold(agent_client)
    proposal = ExceptionItem.objects.get(pk=item_id).proposal
    judge(operator_client, item_id, "modify", output={**proposal, "amount": 100.0})

    second = judge(second_operator_client, item_id, "modify", output={**proposal, "amount": 101.0})

    assert second.json()["consensus"]["adjudication"] is True
    assert Vote.objects.filter(item_id=item_id).count() == 2


def test_only_the_policys_share_of_items_is_blind_reviewed(billing_queues, agent_client, operator_client):
    review = {"share": 0.3, "judgements": 2, "adjudication_queue": "billing-senior"}
    policy_publish(document=billing_document(blind_review=review), source=PolicySource.FILE)
    drawn = [blind_draw(item_id) < 0.3 for item_id in range(1, 20_001)]

    assert sum(drawn) / len(drawn) == pytest.approx(0.3, abs=0.01)
    item_ids = [hold(agent_client) for _ in range(20)]
    outside = next(item_id for item_id in item_ids if blind_draw(item_id) >= 0.3)
    inside = next(item_id for item_id in item_ids if blind_draw(item_id) < 0.3)
    assert judge(operator_client, outside).json()["status"] == "resolved"
    assert judge(operator_client, inside).json()["status"] == "open"


def test_audit_samples_judged_blind_send_one_audit_failed_when_both_find_them_wrong(
    billing_queues, agent_client, operator_client, second_operator_client
):
    review = {"share": 1.0, "judgements": 2, "kinds": ["audit"], "adjudication_queue": "billing-senior"}
    document = billing_document(sampling={"proceed_rate": 1.0}, blind_review=review)
    policy_publish(document=document, source=PolicySource.FILE)
    answer = agent_client.post("/api/v1/decisions", decision_body(correlation_id="ran-1"), format="json").json()
    assert answer["verdict"] == "proceed"
    audit = ExceptionItem.objects.get(kind=ItemKind.AUDIT)
    held_id = hold(agent_client)  # a hold is not in the blind review's kinds: one person decides it

    first = judge(operator_client, audit.pk, "reject", reason_code="wrong_amount")
    assert first.json()["status"] == "open"
    assert not Delivery.objects.filter(item_id=audit.pk).exists()  # the first "wrong" alone sends nothing
    second = judge(second_operator_client, audit.pk, "reject", reason_code="wrong_amount")

    assert second.json()["status"] == "resolved"
    [failed] = Delivery.objects.filter(item_id=audit.pk)
    assert failed.payload["type"] == "audit.failed"
    assert judge(operator_client, held_id).json()["status"] == "resolved"
