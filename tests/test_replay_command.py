"""`manage.py apply_policies --replay WINDOW`: each changed file's replay, printed before anything is
published; with --check, printed and nothing published."""

import random
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from exceptions_app.models import PolicyVersion, Workflow
from exceptions_app.services.replay import ReplayWindow, policy_replay
from exceptions_app.services.tokens import principal_ensure
from tests.fixtures.gate import BILLING, billing_document
from tests.fixtures.replay import changed_draft, judge_some, submit_batches, varied_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(tmp_path, agent_client, billing_queues):
    rng = random.Random(3)
    submit_batches(agent_client, [varied_body(rng, index) for index in range(600)])
    judge_some(principal_ensure(name="sam", role="supervisor"), count=60)
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "billing.yaml").write_text(yaml.safe_dump(changed_draft()))
    other = billing_document(workflow="routing.fresh")
    (folder / "fresh.yaml").write_text(yaml.safe_dump(other))
    return folder


def _run(*arguments) -> str:
    out = StringIO()
    call_command("apply_policies", *arguments, stdout=out)
    return out.getvalue()


def _matrix_lines(answer: dict) -> list[str]:
    return [
        f"  {current:<15}" + "".join(str(answer["matrix"][current][draft]).rjust(9) for draft in answer["matrix"])
        for current in answer["matrix"]
    ]


def test_replay_prints_each_changed_file_before_publishing_it(policies):
    expected = policy_replay(
        workflow=Workflow.objects.get(name=BILLING), document=changed_draft(), window=ReplayWindow(limit=10_000)
    )
    assert expected["changed"] > 0

    output = _run("--replay", "7d", str(policies))

    lines = output.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith(f"{BILLING} (") and "replayed 600" in line)
    assert lines[header + 2 : header + 5] == _matrix_lines(expected)
    assert f"  would_leak {expected['would_leak']} " in output
    assert "routing.fresh" in output
    assert "new workflow, no recorded decisions to replay" in output
    published = next(n for n, line in enumerate(lines) if line.startswith(f"{BILLING}: published v2"))
    assert published > header
    assert Workflow.objects.get(name=BILLING).current_policy.version == 2


def test_replay_with_check_prints_and_publishes_nothing(policies):
    versions = PolicyVersion.objects.count()

    output = _run("--check", "--replay", "300", str(policies))

    assert "replayed 300 decisions of the last 300 decisions" in output
    assert "would_leak" in output
    assert "2 policy files are valid" in output
    assert PolicyVersion.objects.count() == versions
    assert not Workflow.objects.filter(name="routing.fresh").exists()


def test_an_unchanged_file_is_not_replayed(policies):
    (policies / "billing.yaml").write_text(yaml.safe_dump(billing_document()))

    output = _run("--check", "--replay", "24h", str(policies))

    assert f"{BILLING} ({policies / 'billing.yaml'}): unchanged (v1), not replayed" in output


@pytest.mark.parametrize("window", ["7 days", "0d", "-1d", "7w", ""])
def test_a_bad_window_is_refused_before_anything_happens(policies, window):
    versions = PolicyVersion.objects.count()

    with pytest.raises(CommandError, match="--replay"):
        _run("--replay", window, str(policies))

    assert PolicyVersion.objects.count() == versions
