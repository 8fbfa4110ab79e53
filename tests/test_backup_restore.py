"""The documented backup and restore (docs/operations.md), run once for real: pg_dump -Fc of a
database the app has written to, pg_restore into a fresh database, and the copy matches, with the
audit log's guards still in force."""

import os
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import connection

from exceptions_app.models import AuditEvent, Delivery, ExceptionItem, GateDecision
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db(transaction=True)  # pg_dump sees committed rows only

TABLES = [model._meta.db_table for model in (ExceptionItem, GateDecision, AuditEvent, Delivery)] + [
    "django_migrations",
    "auth_user",
]


def server_arguments() -> list[str]:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return ["--host", parts.hostname or "127.0.0.1", "--port", str(parts.port or 5432), "--username", parts.username]


def run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"


def fingerprint(cursor, table: str) -> tuple[int, str]:
    """Row count and a digest of every row's full text, in key order."""
    cursor.execute(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t")  # noqa: S608
    return cursor.fetchone()


@pytest.fixture
def restored_name() -> Iterator[str]:
    name = f"{connection.settings_dict['NAME']}_restored"
    run("dropdb", *server_arguments(), "--if-exists", name)
    yield name
    run("dropdb", *server_arguments(), "--if-exists", "--force", name)


def test_a_pg_dump_restores_into_a_fresh_database_with_the_same_rows_and_guards(
    agent_client, operator_client, restored_name, tmp_path
):
    item_ids = [hold(agent_client, correlation_id=f"backup-{number}") for number in range(3)]
    operator_client.post(f"/api/v1/exceptions/{item_ids[0]}/claim")
    resolved = operator_client.post(f"/api/v1/exceptions/{item_ids[0]}/resolve", {"action": "approve"}, format="json")
    assert resolved.status_code == 200
    source = connection.settings_dict["NAME"]
    backup = tmp_path / "tollgate.dump"

    run("pg_dump", *server_arguments(), "--format=custom", "--file", str(backup), source)
    run("createdb", *server_arguments(), restored_name)
    run("pg_restore", *server_arguments(), "--exit-on-error", "--no-owner", "--dbname", restored_name, str(backup))

    with connection.cursor() as cursor:
        original = {table: fingerprint(cursor, table) for table in TABLES}
    assert original[AuditEvent._meta.db_table][0] >= 5  # 3 raised, claimed, resolved
    assert original[Delivery._meta.db_table][0] >= 1
    restored_url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{restored_name}").geturl()
    with psycopg.connect(restored_url, autocommit=True) as copy, copy.cursor() as cursor:
        assert {table: fingerprint(cursor, table) for table in TABLES} == original
        for statement in (
            "UPDATE exceptions_app_auditevent SET actor_label = 'someone else'",
            "DELETE FROM exceptions_app_auditevent",
            "TRUNCATE exceptions_app_auditevent",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                cursor.execute(statement)
        assert fingerprint(cursor, AuditEvent._meta.db_table) == original[AuditEvent._meta.db_table]
