"""The database fast paths lean on things that can change under us: a private Django API, psycopg's
prepared statements, PostgreSQL settings. These tests fail loudly, with the reason, if one does."""

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exceptions_app import db_fast_paths
from exceptions_app.models import AuditEvent, ExceptionItem, GateDecision
from tests.fixtures.gate import hold

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


def _chain_of_a_hold(agent_client):
    """A held decision's three rows, built (not saved) from one already held through the API."""
    related = ("decision", "queue", "workflow", "agent__user")
    item = ExceptionItem.objects.select_related(*related).get(pk=hold(agent_client))
    decision = GateDecision.objects.get(pk=item.decision_id)
    decision.pk, decision.idempotency_key, decision._state.adding = None, "chain-probe", True
    item.pk, item.decision, item._state.adding = None, decision, True
    event = AuditEvent(
        action="raised", actor=item.agent.user, item=item, workflow=item.workflow, payload={}, created_at=timezone.now()
    )
    return decision, item, event


@pytest.mark.django_db(transaction=True)  # the statement commits on its own, as in production
def test_insert_chain_writes_a_row_and_the_rows_pointing_at_it_in_one_statement(agent_client, billing_queues):
    decision, item, event = _chain_of_a_hold(agent_client)
    with CaptureQueriesContext(connection) as django_queries:
        db_fast_paths.insert_chain(decision, (item, "decision"), (event, "item"))

    # One statement, with no BEGIN and COMMIT around it (where save() on each made five round trips).
    assert len(django_queries) == 1
    assert (decision.pk, item.pk, event.pk) != (None, None, None)
    assert ExceptionItem.objects.get(pk=item.pk).decision_id == decision.pk
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.item_id, stored.actor_id, stored.action) == (item.pk, item.agent.user_id, "raised")
    assert GateDecision.objects.get(pk=decision.pk).idempotency_key == "chain-probe"
    assert not item._state.adding
    assert item.decision is decision


@pytest.mark.django_db(transaction=True)
def test_insert_chain_writes_all_rows_or_none_and_raises_djangos_integrity_error(agent_client, billing_queues):
    decision, item, event = _chain_of_a_hold(agent_client)
    event.created_at = None  # NOT NULL: the last row fails, after the first two went in
    decisions, items = GateDecision.objects.count(), ExceptionItem.objects.count()

    with pytest.raises(IntegrityError):
        db_fast_paths.insert_chain(decision, (item, "decision"), (event, "item"))

    assert (GateDecision.objects.count(), ExceptionItem.objects.count()) == (decisions, items)
    with transaction.atomic():  # inside a caller's transaction, a refusal leaves the transaction usable
        with pytest.raises(IntegrityError):
            db_fast_paths.insert_chain(decision, (item, "decision"), (event, "item"))
        assert GateDecision.objects.count() == decisions
