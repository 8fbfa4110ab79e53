"""The app's own database role: it works every table, but the audit log only grows. UPDATE,
DELETE and TRUNCATE are refused by privilege, and the role cannot lift the guard triggers."""

import secrets

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from exceptions_app.models import AuditEvent, ExceptionItem
from tests.fixtures.gate import decision_body

AUDIT = AuditEvent._meta.db_table
assert AUDIT == "exceptions_app_auditevent"
assert ExceptionItem._meta.db_table == "exceptions_app_exceptionitem"


@pytest.fixture
def app_role(transactional_db):
    role = f"tollgate_app_{secrets.token_hex(4)}"
    yield role
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')


def _connect_as(role: str) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        dbname=settings["NAME"],
        user=role,
        autocommit=True,
        connect_timeout=10,
    )


def test_the_app_role_cannot_change_the_audit_log_or_lift_its_guards(app_role, agent_client, billing_queues):
    held = agent_client.post("/api/v1/decisions", decision_body(confidence=0.5), format="json").json()
    item_id = held["exception"]["id"]
    call_command("grant_app_role", app_role, "--create")

    with _connect_as(app_role) as conn:
        events = conn.execute("SELECT count(*) FROM exceptions_app_auditevent WHERE item_id = %s", [item_id])
        assert events.fetchone()[0] == 1
        # The app's own work goes on: items change, audit events are appended.
        conn.execute("UPDATE exceptions_app_exceptionitem SET priority = priority + 1 WHERE id = %s", [item_id])
        conn.execute(
            "INSERT INTO exceptions_app_auditevent (item_id, workflow_id, action, from_status, to_status, "
            "actor_label, payload, created_at) SELECT id, workflow_id, 'commented', status, status, 'role-test', "
            "'{}', now() FROM exceptions_app_exceptionitem WHERE id = %s",
            [item_id],
        )
        refused = [
            "UPDATE exceptions_app_auditevent SET action = 'forged'",
            "DELETE FROM exceptions_app_auditevent",
            "TRUNCATE exceptions_app_auditevent",
            "ALTER TABLE exceptions_app_auditevent DISABLE TRIGGER ALL",
            "DROP TRIGGER exceptions_app_auditevent_append_only ON exceptions_app_auditevent",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    assert AuditEvent.objects.filter(item_id=item_id).count() == 2
    assert not AuditEvent.objects.filter(action="forged").exists()


def test_every_table_is_granted_and_the_audit_log_only_to_select_and_insert(app_role, billing_workflow):
    call_command("grant_app_role", app_role, "--create")
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT tablename,
                      has_table_privilege(%s, quote_ident(tablename), 'SELECT'),
                      has_table_privilege(%s, quote_ident(tablename), 'INSERT'),
                      has_table_privilege(%s, quote_ident(tablename), 'UPDATE'),
                      has_table_privilege(%s, quote_ident(tablename), 'DELETE'),
                      has_table_privilege(%s, quote_ident(tablename), 'TRUNCATE')
               FROM pg_tables WHERE schemaname = 'public'""",
            [app_role] * 5,
        )
        privileges = {row[0]: row[1:] for row in cursor.fetchall()}
    assert privileges.pop(AUDIT) == (True, True, False, False, False)
    assert privileges
    assert all(granted == (True, True, True, True, False) for granted in privileges.values())


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["postgres", "1abc", "bad-name", "x" * 64, "robert'); DROP TABLE x;--"])
def test_superusers_and_odd_names_are_refused(role):
    with pytest.raises(CommandError):
        call_command("grant_app_role", role, "--create")


@pytest.mark.django_db
def test_print_shows_the_sql_and_changes_nothing(capsys):
    call_command("grant_app_role", "tollgate_app_preview", "--print")
    shown = capsys.readouterr().out
    assert f'GRANT SELECT, INSERT ON TABLE "{AUDIT}" TO "tollgate_app_preview"' in shown
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'tollgate_app_preview'")
        assert cursor.fetchone() is None


def test_password_env_sets_the_password_without_ever_printing_it(app_role, monkeypatch, capsys):
    secret = f"pw-{secrets.token_hex(8)}"
    monkeypatch.setenv("TOLLGATE_TEST_APP_PASSWORD", secret)

    call_command("grant_app_role", app_role, "--create", "--password-env", "TOLLGATE_TEST_APP_PASSWORD", "--print")
    call_command("grant_app_role", app_role, "--create", "--password-env", "TOLLGATE_TEST_APP_PASSWORD")

    printed = capsys.readouterr().out
    assert "PASSWORD <from $TOLLGATE_TEST_APP_PASSWORD>" in printed
    assert secret not in printed
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [app_role])
        stored = cursor.fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$")  # hashed by the server, not kept in plain text


@pytest.mark.django_db
def test_an_unset_password_variable_is_refused_before_anything_runs(monkeypatch):
    monkeypatch.delenv("TOLLGATE_TEST_APP_PASSWORD", raising=False)

    with pytest.raises(CommandError, match="TOLLGATE_TEST_APP_PASSWORD"):
        call_command("grant_app_role", "tollgate_app_unset", "--create", "--password-env", "TOLLGATE_TEST_APP_PASSWORD")

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'tollgate_app_unset'")
        assert cursor.fetchone() is None
