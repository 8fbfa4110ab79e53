"""The database fast paths lean on things that can change under us: a private Django API, psycopg's
prepared statements, PostgreSQL settings. These tests fail loudly, with the reason, if one does."""

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import ProgrammingError, connection, transaction

from exceptions_app import db_fast_paths

pytestmark = pytest.mark.django_db


def test_django_still_has_the_private_cursor_wrapper_the_claim_relies_on():
    assert callable(getattr(connection, "_prepare_cursor", None)), (
        "django.db.backends.base.base.BaseDatabaseWrapper._prepare_cursor is gone or renamed: "
        "exceptions_app/db_fast_paths.prepared_cursor needs another way to wrap a psycopg cursor"
    )


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_prepared_cursor_prepares_its_statement_on_the_server():
    statement = "SELECT 40 + %s -- fast path probe"
    with db_fast_paths.prepared_cursor() as cursor:
        cursor.execute(statement, [2])
        assert cursor.fetchone() == (42,)

    assert any("fast path probe" in text for text in _prepared_statements()), (
        "psycopg no longer prepares server-side with prepare_threshold = 0 on this cursor"
    )


@pytest.mark.django_db(transaction=True)  # autocommit: the failed statement aborts no test transaction
def test_a_prepared_cursor_raises_djangos_errors_not_the_drivers():
    # _prepare_cursor is there for this: callers catch django.db errors, never psycopg's.
    with pytest.raises(ProgrammingError), db_fast_paths.prepared_cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")


@pytest.mark.django_db(transaction=True)  # the test must own the transactions it opens
def test_index_scan_only_lasts_one_transaction_and_refuses_to_run_outside_one():
    with pytest.raises(RuntimeError):
        db_fast_paths.index_scan_only()
    with transaction.atomic():
        db_fast_paths.index_scan_only()
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_bitmapscan")
            assert cursor.fetchone() == ("off",)
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_bitmapscan")
        assert cursor.fetchone() == ("on",)


def test_update_returning_sets_and_returns_only_the_rows_of_the_queryset():
    users = get_user_model().objects
    for name in ("ann", "bob", "cyd", "dan"):
        users.create(username=name)
    head = users.filter(username__in=["ann", "bob", "cyd"]).order_by("username").select_for_update(skip_locked=True)

    with transaction.atomic():
        updated = db_fast_paths.update_returning(head[:2], first_name="Leased")

    assert sorted(user.username for user in updated) == ["ann", "bob"]
    assert all(user.first_name == "Leased" for user in updated)
    assert list(users.filter(first_name="Leased").order_by("username").values_list("username", flat=True)) == [
        "ann",
        "bob",
    ]


@pytest.mark.django_db(transaction=True)
def test_update_returning_skips_rows_another_transaction_holds():
    # The lease's guarantee: rows another transaction holds are skipped, not waited for.
    users = get_user_model().objects
    for name in ("eve", "fay"):
        users.create(username=name)
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname=settings["NAME"]
    ) as other:
        other.execute("SELECT id FROM auth_user WHERE username = 'eve' FOR UPDATE")  # held until other ends
        rows = users.filter(username__in=["eve", "fay"]).order_by("username").select_for_update(skip_locked=True)
        with transaction.atomic():
            updated = db_fast_paths.update_returning(rows[:1], first_name="Leased")

    assert [user.username for user in updated] == ["fay"]
