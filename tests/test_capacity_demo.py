"""The demo (`make run`) shows a non-trivial capacity panel within minutes: the simulated agents give
arrivals, the auto-operator gives handling times and an operator."""

import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from tests.test_demo import ROOT, demo_environment, run_demo

pytestmark = pytest.mark.demo
PANEL_WAIT_S = 120


@pytest.mark.browser
def test_the_demo_shows_a_capacity_panel_with_measured_rates(tmp_path, browser):
    # Snapshots every 5 s instead of 60 so the test needs seconds where a person waits two minutes.
    environment = demo_environment(tmp_path, TOLLGATE_SNAPSHOT_SECONDS="5")
    seen = {}

    def capacity_measured(url: str) -> None:
        token = subprocess.run(
            [sys.executable, "manage.py", "create_token", "capacity-check", "--role", "supervisor"],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        raw = next(word for word in token if word.startswith("tg_"))
        deadline = time.monotonic() + PANEL_WAIT_S
        while time.monotonic() < deadline:
            body = httpx.get(
                f"{url}/api/v1/stats/capacity?scale=2", headers={"Authorization": f"Bearer {raw}"}, timeout=10
            ).json()
            measured = [
                row
                for row in body["queues"]
                if row["arrival_rate_per_hour"] > 0 and row["service_rate_per_operator_per_hour"] and row["operators"]
            ]
            if measured:
                seen.update(body=body, measured=measured)
                break
            time.sleep(3)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{url}/accounts/login/")
        page.get_by_label("Username").fill("supervisor")
        page.get_by_label("Password").fill("tollgate-supervisor")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/")
        page.goto(f"{url}/dashboard?scale=2")
        seen["headline"] = page.get_by_test_id("capacity-headline").inner_text()
        page.get_by_test_id("capacity").screenshot(path=str(ROOT / "docs" / "screenshots" / "demo-capacity.png"))
        context.close()

    def count(query: str) -> int:
        with sqlite3.connect(tmp_path / "data" / "tollgate.sqlite3", timeout=10) as connection:
            return connection.execute(query).fetchone()[0]

    run_demo(environment, tmp_path, count, while_running=capacity_measured)

    assert seen.get("measured"), f"no queue with arrivals, handling and an operator: {seen.get('body')}"
    assert seen["headline"].startswith("At 2x volume")
    assert "breaks first" in seen["headline"] or "every queue meets" in seen["headline"]
