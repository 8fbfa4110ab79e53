"""Shared fixtures: real PostgreSQL, real Redis, real Celery workers, real Chromium.

The engines are required by the fixtures that use them, not by the session: tests/unit runs with
none (`make test-fast` runs it first), and a test that needs the database checks both engines once,
then flushes this run's Redis database."""

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


@pytest.fixture(scope="session")
def engines() -> None:
    """PostgreSQL and Redis, answering; the whole run stops with the reason if either is missing."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url.startswith("redis://"):
        pytest.exit(
            "These tests run on PostgreSQL and Redis: run them with `make test` (or set DATABASE_URL and REDIS_URL);"
            " tests/unit needs neither.",
            2,
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


@pytest.fixture(scope="session")
def django_db_setup(engines, django_db_setup):
    """pytest-django's database setup, after the engines are checked (every database test passes here).
    At the end the waits' listener thread stops first: it holds a database connection, and the test
    database cannot be dropped while it is open."""
    yield
    from exceptions_app.waits.hub import wait_hub

    wait_hub().stop()


@pytest.fixture(autouse=True)
def _fresh_local_caches() -> None:
    """Each test starts with empty per-process lookup caches: rows a rolled-back test created must
    not be served to the next one from memory."""
    from exceptions_app.services.local_cache import local_caches_clear

    local_caches_clear()


@pytest.fixture
def plain_static_and_fresh_caches(settings):
    """Pages with plain static names, and per-process caches emptied before and after.

    live_server serves static files through the finders, which do not know the manifest's hashed
    names (WhiteNoise serves those in production), and the hashed names are whatever the last
    collectstatic wrote. WhiteNoise would also scan STATIC_ROOT whenever a test client builds its
    middleware: autorefresh skips that scan (it costs time and races with a concurrent collectstatic).
    Rolled-back rows must not survive in another test's lookup caches."""
    from exceptions_app.services.local_cache import local_caches_clear

    settings.WHITENOISE_AUTOREFRESH = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    local_caches_clear()
    yield
    local_caches_clear()


@pytest.fixture(autouse=True)
def _plain_static_files_for_browsers(request):
    if request.node.get_closest_marker("browser") is not None:
        request.getfixturevalue("plain_static_and_fresh_caches")


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
    "engines",
    "operator_client",
    "page",
    "receiver",
    "run_management_process",
    "second_operator_client",
    "supervisor_client",
    "test_database_url",
    "worker_factory",
]
