"""Expected unattended errors under a draft (issue 21 with issue 20's estimates), on known data:
audit samples of proceeds and judged holds give each confidence band's error rate; the draft's
proceeds per band times those rates, post-stratified, with Wilson's interval at Kish's n."""

import io
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.template.defaultfilters import floatformat
from django.test import Client

from exceptions_app.accountability import sampling
from exceptions_app.accountability.estimates import wilson
from exceptions_app.models import ExceptionItem, ItemKind, PolicySource, Workflow
from exceptions_app.services.items import item_claim, item_resolve
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.replay import ReplayWindow, policy_replay
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import BILLING, billing_document, decision_body
from tests.fixtures.replay import submit_batches

pytestmark = pytest.mark.django_db
SAMPLING = {"proceed_rate": 0.5}
PROCEEDS, HOLDS, HOLDS_WRONG, AUDITS_WRONG = 40, 10, 4, 2


def _document(**thresholds) -> dict:
    document = billing_document(sampling=SAMPLING)
    document["thresholds"] = {**document["thresholds"], **thresholds}
    return document


@pytest.fixture
def judged(agent_client, billing_queues):
    """40 proceeds at 0.97 (half of them, by a seeded draw, audited at p = 0.5: the first two judged
    wrong, the rest right), 10 holds at 0.82 (4 rejected, 6 approved) and 5 holds at 0.72 nobody
    judged. Answers how many audit samples there are (k)."""
    policy_publish(document=_document(), source=PolicySource.FILE)
    sampling._draws.seed(20)
    bodies = [decision_body(confidence=0.97, correlation_id=f"p{n}") for n in range(PROCEEDS)]
    bodies += [decision_body(confidence=0.82, correlation_id=f"h{n}") for n in range(HOLDS)]
    bodies += [decision_body(confidence=0.72, correlation_id=f"u{n}") for n in range(5)]
    submit_batches(agent_client, bodies)
    sam = principal_ensure(name="sam", role="supervisor")
    audits = list(ExceptionItem.objects.filter(kind=ItemKind.AUDIT).order_by("id"))
    holds = list(ExceptionItem.objects.filter(kind=ItemKind.HOLD, confidence=0.82).order_by("id"))
    for number, item in enumerate(audits):
        _judge(sam, item.pk, "reject" if number < AUDITS_WRONG else "approve")
    for number, item in enumerate(holds):
        _judge(sam, item.pk, "reject" if number < HOLDS_WRONG else "approve")
    assert 5 <= len(audits) <= 35
    assert {item.sampling_probability for item in audits} == {0.5}
    return len(audits)


def _judge(principal, item_id: int, action: str) -> None:
    item_claim(item_id=item_id, principal=principal)
    item_resolve(item_id=item_id, principal=principal, action=action, reason_code="wrong_amount" * (action == "reject"))


def _replay(document: dict) -> dict:
    workflow = Workflow.objects.select_related("current_policy").get(name=BILLING)
    return policy_replay(workflow=workflow, document=document, window=ReplayWindow(limit=1000))


def _bounds(count: float, rate: float, n_eff: float) -> dict:
    low, high = wilson(rate, n_eff)
    return {"estimate": count * rate, "low": count * low, "high": count * high}


def _matches(answer: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert answer[key] == pytest.approx(value, abs=1e-5), key


def test_under_the_published_policy_it_is_the_proceeds_times_the_audited_error_rate(judged):
    expected = _replay(_document())["expected_unattended_errors"]

    rate = AUDITS_WRONG / judged  # equal weights (1/0.5 each): the plain rate, Wilson at n = k
    _matches(expected, _bounds(PROCEEDS, rate, judged))
    assert expected["proceeds"] == PROCEEDS
    assert expected["judged"] == judged
    assert expected["bands_without_judgements"] == []


def test_a_lower_threshold_adds_the_held_bands_at_the_error_rate_people_found_in_them(judged):
    expected = _replay(_document(auto_approve=0.8))["expected_unattended_errors"]

    total = PROCEEDS + HOLDS
    # Post-stratified: band 0.95-1.0 weighs 40/50 with 2/k wrong, band 0.80-0.85 10/50 with 4/10.
    rate = (PROCEEDS / total) * (AUDITS_WRONG / judged) + (HOLDS / total) * (HOLDS_WRONG / HOLDS)
    # Each audit weighs (40/50)/k, each hold (10/50)/10: Kish's n_eff = 1 / sum(w^2).
    n_eff = 1 / (judged * ((PROCEEDS / total) / judged) ** 2 + HOLDS * ((HOLDS / total) / HOLDS) ** 2)
    _matches(expected, _bounds(total, rate, n_eff))
    assert (expected["proceeds"], expected["judged"]) == (total, judged + HOLDS)


def test_a_band_the_draft_lets_through_that_nobody_judged_leaves_the_estimate_unknown_and_says_which(judged):
    expected = _replay(_document(auto_approve=0.7))["expected_unattended_errors"]

    assert (expected["estimate"], expected["low"], expected["high"]) == (None, None, None)
    assert expected["bands_without_judgements"] == [{"lower": 0.7, "upper": 0.75, "proceeds": 5}]
    assert expected["proceeds"] == PROCEEDS + HOLDS + 5


def test_without_any_judgement_there_is_no_estimate(agent_client, billing_queues):
    policy_publish(document=_document(), source=PolicySource.FILE)
    submit_batches(agent_client, [decision_body(correlation_id=f"p{n}") for n in range(5)])

    assert _replay(_document())["expected_unattended_errors"] is None


def test_the_api_the_command_and_the_console_show_it(judged, supervisor_client, tmp_path: Path):
    draft = _document(auto_approve=0.8)
    answer = supervisor_client.post(f"/api/v1/workflows/{BILLING}/replay", {"policy": draft}, format="json")
    assert answer.status_code == 200, answer.json()
    expected = answer.json()["expected_unattended_errors"]
    assert expected["proceeds"] == PROCEEDS + HOLDS
    assert expected["estimate"] > 0

    (tmp_path / f"{BILLING}.yaml").write_text(yaml.safe_dump(draft))
    out = io.StringIO()
    call_command("apply_policies", str(tmp_path), "--replay", "7d", "--check", stdout=out)
    printed = out.getvalue()
    shown = f"{expected['estimate']:.1f} (95% {expected['low']:.1f}-{expected['high']:.1f})"
    assert f"expected unattended errors {shown} among {PROCEEDS + HOLDS} proceeds" in printed

    console = Client()
    console.force_login(principal_ensure(name="sam", role="supervisor").user)
    page = console.post(
        "/policies/replay/run", {"workflow": BILLING, "draft": yaml.safe_dump(draft), "window": "7d"}
    ).content.decode()
    low, high = floatformat(expected["low"], 1), floatformat(expected["high"], 1)
    on_page = f"{floatformat(expected['estimate'], 1)} (95% {low}\u2013{high})"
    assert f'data-testid="expected-errors">{on_page}<' in page
