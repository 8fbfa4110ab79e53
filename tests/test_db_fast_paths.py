"""The database fast paths lean on things that can change under us: a private Django API, psycopg's
prepared statements, PostgreSQL settings. These tests fail loudly, with the reason, if one does."""

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import ProgrammingError, connection, transaction
from django.db.models.signals import post_init
from django.utils import timezone

from exceptions_app import db_fast_paths
from exceptions_app.models import AuditEvent, ExceptionItem, GateDecision

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


def _columns(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_unsaved_instance_is_what_the_model_constructor_builds_and_caches_related_objects(
    django_assert_num_queries,
):
    user = get_user_model().objects.create(username="ann")
    values = dict(action="raised", actor=user, actor_label="ann", payload={"a": 1}, created_at=timezone.now())

    fast, slow = db_fast_paths.unsaved_instance(AuditEvent, **values), AuditEvent(**values)

    assert _columns(fast) == _columns(slow)
    assert fast._state.adding
    assert fast._state.db is None
    with django_assert_num_queries(0):
        assert fast.actor is user
        assert fast.item is None
    fast.save(force_insert=True)
    assert AuditEvent.objects.get(pk=fast.pk).actor_id == user.pk


@pytest.mark.parametrize("model", [GateDecision, ExceptionItem, AuditEvent])
def test_unsaved_instance_fills_every_default_as_the_constructor_does(model):
    fast, slow = db_fast_paths.unsaved_instance(model), model()

    assert _columns(fast) == _columns(slow)
    mutable = [name for name, value in _columns(fast).items() if isinstance(value, list | dict)]
    other = db_fast_paths.unsaved_instance(model)
    assert all(getattr(fast, name) is not getattr(other, name) for name in mutable), "a default shared between rows"


def test_unsaved_instance_refuses_a_name_that_is_no_field():
    with pytest.raises(TypeError, match="no field 'colour'"):
        db_fast_paths.unsaved_instance(AuditEvent, colour="red")


def test_unsaved_instance_still_runs_init_signals_when_a_model_has_receivers():
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=AuditEvent)
    try:
        event = db_fast_paths.unsaved_instance(AuditEvent, action="raised")
    finally:
        post_init.disconnect(receiver, sender=AuditEvent)
    assert seen == [event]


def test_captured_state_is_compressed_with_lz4_where_the_server_has_it():
    # Migration 0023: lz4 TOASTs a 20 KB trace in about half pglz's time. This server was built with lz4.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, attcompression FROM pg_attribute "
            "WHERE attrelid = 'exceptions_app_exceptionitem'::regclass AND attname IN ('trace', 'context', 'reasons')"
        )
        compression = dict(cursor.fetchall())
    assert compression == {"trace": "l", "context": "l", "reasons": ""}
