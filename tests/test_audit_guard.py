"""The audit log cannot be changed through the application: not by the ORM, and not by raw SQL on
the application's own database connection (PostgreSQL triggers refuse UPDATE, DELETE, TRUNCATE)."""

import pytest
from django.db import DatabaseError, connection, transaction

from exceptions_app.models import AuditEvent
from exceptions_app.models.audit import AuditEventImmutable
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db

TABLE = AuditEvent._meta.db_table


@pytest.fixture
def audited(agent_client):
    """An item held through the API, which wrote its `raised` audit event."""
    item_id = hold(agent_client)
    events = list(AuditEvent.objects.filter(item_id=item_id).values_list("id", "action", "actor_label"))
    assert events, "holding an item writes an audit event"
    return item_id, events


@pytest.mark.django_db(transaction=True)  # committed rows, as in production (no pending FK checks)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE exceptions_app_auditevent SET actor_label = 'someone else'",
        "DELETE FROM exceptions_app_auditevent",
        "TRUNCATE exceptions_app_auditevent",
        "TRUNCATE exceptions_app_auditevent CASCADE",
    ],
)
def test_raw_sql_on_the_apps_connection_cannot_change_the_audit_log(audited, statement):
    item_id, events = audited

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)

    assert list(AuditEvent.objects.filter(item_id=item_id).values_list("id", "action", "actor_label")) == events


def test_the_guards_are_on_the_audit_table_itself():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname", [TABLE]
        )
        names = [row[0] for row in cursor.fetchall()]
    assert names == ["exceptions_app_auditevent_append_only", "exceptions_app_auditevent_no_truncate"]


ORM_CHANGES = {
    "queryset update": lambda event: AuditEvent.objects.filter(pk=event.pk).update(actor_label="x"),
    "queryset delete": lambda event: AuditEvent.objects.filter(pk=event.pk).delete(),
    "related update": lambda event: event.item.events.update(action="resolved"),
    "related delete": lambda event: event.item.events.all().delete(),
    "bulk_update": lambda event: AuditEvent.objects.bulk_update([event], ["actor_label"]),
    "save of an existing event": lambda event: event.save(),
    "delete of one event": lambda event: event.delete(),
}


@pytest.mark.parametrize("change", ORM_CHANGES.values(), ids=ORM_CHANGES.keys())
def test_the_orm_has_no_path_that_updates_or_deletes_audit_events(audited, change):
    item_id, events = audited
    event = AuditEvent.objects.get(item_id=item_id)
    event.actor_label = "someone else"

    with pytest.raises(AuditEventImmutable, match="append-only"):
        change(event)

    assert list(AuditEvent.objects.filter(item_id=item_id).values_list("id", "action", "actor_label")) == events


def test_new_audit_events_are_still_written(audited, operator_client):
    item_id, _ = audited

    operator_client.post(f"/api/v1/exceptions/{item_id}/claim")

    actions = list(AuditEvent.objects.filter(item_id=item_id).values_list("action", flat=True))
    assert actions == ["raised", "claimed"]
