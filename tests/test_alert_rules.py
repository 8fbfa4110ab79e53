"""The Prometheus alerting rules in prometheus/ are valid and do what their unit tests say, checked
by Debian's promtool (package ``prometheus``; .ci/run installs it). No skip: CI must run this."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[1] / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install prometheus (.ci/run does)"
    return subprocess.run([binary, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_checks_the_alerting_rules():
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_promtool_unit_tests_of_the_alerting_rules_pass():
    done = promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_broken_expectation_fails_promtool(tmp_path):
    """The unit tests can fail: the same file with the breach alert expected for the wrong queue."""
    broken = (RULES / "alerts.test.yml").read_text().replace("queue: billing\n", "queue: routing\n", 1)
    (tmp_path / "alerts.yml").write_text((RULES / "alerts.yml").read_text())
    (tmp_path / "alerts.test.yml").write_text(broken)
    done = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", "alerts.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr


@pytest.mark.django_db
def test_every_tollgate_metric_the_capacity_rules_read_is_exported(client):
    """The capacity, queue and drift-breaker gauges the rules use exist in /metrics (the outbox and
    consumer gauges come with the worker's pipeline check)."""
    pattern = r"\b(tollgate_(?:capacity|queue_depth|workflow_tripped)\w*)"
    used = set(re.findall(pattern, (RULES / "alerts.yml").read_text()))
    exported = client.get("/metrics").content.decode()
    assert used
    assert {name for name in used if f"# TYPE {name} gauge" not in exported} == set()
