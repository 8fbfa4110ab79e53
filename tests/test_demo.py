"""The first run: the demo processes from a fresh database show the whole loop within 60 seconds."""

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from exceptions_app.management.commands.simulate_agents import AUTO_OPERATORS
from tests.fixtures.workers import group_stop

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.demo
LOOP = {
    "proceeded": "SELECT count(*) FROM exceptions_app_gatedecision WHERE verdict = 'proceed'",
    "held": "SELECT count(*) FROM exceptions_app_gatedecision WHERE verdict = 'hold'",
    "resolved": "SELECT count(*) FROM exceptions_app_exceptionitem WHERE status = 'resolved'",
    "delivered": (
        "SELECT count(*) FROM exceptions_app_exceptionitem WHERE status = 'resolved' AND delivered_at IS NOT NULL"
    ),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo_environment(tmp_path: Path, **engines: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    environment.update(
        DEBUG="true",
        TOLLGATE_DATA_DIR=str(tmp_path / "data"),
        TOLLGATE_BIND=f"127.0.0.1:{free_port()}",
        TOLLGATE_CALLBACK_ALLOW="127.0.0.1",
        TOLLGATE_DEMO_RATE="4",
        TOLLGATE_DEMO_AUTO_SHARE="1.0",
        TOLLGATE_SWEEP_SECONDS="5",
        TOLLGATE_DELIVERY_SWEEP_SECONDS="1",
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **engines,
    )
    return environment


def run_demo(environment: dict, tmp_path: Path, count, while_running=None) -> dict:
    for command in (["migrate", "--no-input"], ["createcachetable"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
            timeout=120,
        )
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "-f", "Procfile"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started, figures = time.monotonic(), {}
    try:
        while time.monotonic() - started < 60:
            time.sleep(2)
            figures = {name: count(query) for name, query in LOOP.items()}
            if all(figures.values()):
                break
        if while_running is not None and all(figures.values()):
            while_running(f"http://{environment['TOLLGATE_BIND']}")
    finally:
        group_stop(demo)
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert all(figures.values()), f"after 60 s: {figures}\n{output[-3000:]}"
    return {"figures": figures, "seconds": time.monotonic() - started, "log": output}


def assert_agents_resumed(log: str) -> None:
    """An agent resumed with a person's decision: the demo's auto-operator or auto-checker (the second
    approver where a policy asks for two) is named as the resolver."""
    assert "resumed" in log
    assert any(f"by {name}" in log for name in AUTO_OPERATORS), log[-3000:]


def screenshots_of_the_running_demo(browser, base_url: str) -> None:
    """The README's pictures, taken from the demo as a newcomer sees it."""
    target = ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    for username, password, path, name in [
        ("alice", "tollgate-operator", "/", "demo-queues.png"),
        ("supervisor", "tollgate-supervisor", "/dashboard", "demo-dashboard.png"),
    ]:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{base_url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/")
        page.goto(f"{base_url}{path}")
        page.screenshot(path=str(target / name), full_page=True)
        context.close()


@pytest.mark.browser
def test_the_demo_runs_the_whole_loop_on_the_embedded_default(tmp_path, browser):
    environment = demo_environment(tmp_path)

    def count(query: str) -> int:
        database = tmp_path / "data" / "tollgate.sqlite3"
        with sqlite3.connect(database, timeout=10) as connection:
            return connection.execute(query).fetchone()[0]

    result = run_demo(
        environment, tmp_path, count, while_running=lambda url: screenshots_of_the_running_demo(browser, url)
    )

    assert_agents_resumed(result["log"])
    assert (ROOT / "docs" / "screenshots" / "demo-dashboard.png").exists()


def test_the_demo_runs_the_whole_loop_on_postgresql_and_redis(tmp_path):
    parts = urlsplit(os.environ["DATABASE_URL"])
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    database_url = urlunsplit(parts._replace(path="/tollgate_demo_test"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS tollgate_demo_test WITH (FORCE)")
        connection.execute("CREATE DATABASE tollgate_demo_test")
    redis_url = "redis://127.0.0.1:6379/9"
    redis.Redis.from_url(redis_url).flushdb()
    environment = demo_environment(tmp_path, DATABASE_URL=database_url, REDIS_URL=redis_url)

    def count(query: str) -> int:
        with psycopg.connect(database_url) as connection:
            return connection.execute(query).fetchone()[0]

    result = run_demo(environment, tmp_path, count)

    assert_agents_resumed(result["log"])
