"""Shared fixtures: real PostgreSQL, real Redis, real Celery workers, real Chromium."""

import os
import socket
from urllib.parse import urlsplit

import pytest


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url.startswith("redis://"):
        pytest.exit(
            "The suite runs on PostgreSQL and Redis: run it with `make test` (or set DATABASE_URL and REDIS_URL).", 2
        )
    if not _answers(database_url, 5432):
        pytest.exit(
            f"PostgreSQL is not answering at {urlsplit(database_url).netloc}: start it (pg_ctlcluster 15 main start).",
            2,
        )
    if not _answers(redis_url, 6379):
        pytest.exit(
            f"Redis is not answering at {urlsplit(redis_url).netloc}: start it, e.g. `redis-server --daemonize yes`.", 2
        )
    # The test database is created afresh, so ids start again: cached figures keyed on ids, rate
    # counters and broker messages from an earlier run must not leak into this one.
    import redis

    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture(scope="session", autouse=True)
def _wait_listener_stopped_at_the_end(django_db_setup):
    """The waits' listener thread holds a database connection; the test database cannot be dropped
    while it is open."""
    yield
    from exceptions_app.waits.hub import wait_hub

    wait_hub().stop()


@pytest.fixture(autouse=True)
def _fresh_local_caches() -> None:
    """Each test starts with empty per-process lookup caches: rows a rolled-back test created must
    not be served to the next one from memory."""
    from exceptions_app.services.local_cache import local_caches_clear

    local_caches_clear()


@pytest.fixture(autouse=True)
def _plain_static_files_for_browsers(request):
    """live_server serves static files through the finders, which do not know the manifest's hashed
    names (WhiteNoise serves those in production); browser tests use plain names instead."""
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    yield


from tests.fixtures.browser import browser, page  # noqa: E402
from tests.fixtures.gate import (  # noqa: E402
    agent_client,
    billing_queues,
    billing_workflow,
    operator_client,
    second_operator_client,
    supervisor_client,
)
from tests.fixtures.receiver import receiver  # noqa: E402
from tests.fixtures.server import asgi_server_factory  # noqa: E402
from tests.fixtures.workers import (  # noqa: E402
    celery_worker,
    run_management_process,
    test_database_url,
    worker_factory,
)

__all__ = [
    "agent_client",
    "asgi_server_factory",
    "billing_queues",
    "billing_workflow",
    "browser",
    "celery_worker",
    "operator_client",
    "page",
    "receiver",
    "run_management_process",
    "second_operator_client",
    "supervisor_client",
    "test_database_url",
    "worker_factory",
]
