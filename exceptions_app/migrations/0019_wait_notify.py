"""PostgreSQL-only: wake waiting agents by NOTIFY instead of having them poll.

An item that reaches a final status notifies ``i<id>``; an entry of the resolutions feed (a delivery
row of an item, or a workflow event: services/feed.py's FEED_ENTRIES) notifies ``w<workflow id>``, on the channel ``tollgate_wait`` that each web process
LISTENs on (exceptions_app/waits/listeners.py). NOTIFY is sent at commit, so a woken waiter always
reads the committed change; identical notifications of one transaction are sent once. SQLite (the
embedded default) has no NOTIFY: its web processes poll once per interval for all their waiters.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tollgate_notify_item_final() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tollgate_wait', 'i' || NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exceptions_app_exceptionitem_notify_final
    AFTER UPDATE OF status ON exceptions_app_exceptionitem
    FOR EACH ROW
    WHEN (NEW.status IN ('resolved', 'cancelled', 'expired') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION tollgate_notify_item_final();
CREATE OR REPLACE FUNCTION tollgate_notify_feed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tollgate_wait', 'w' || NEW.workflow_id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exceptions_app_delivery_notify_feed
    AFTER INSERT ON exceptions_app_delivery
    FOR EACH ROW
    WHEN (NEW.item_id IS NOT NULL OR NEW.payload->>'type' = 'workflow.tripped')
    EXECUTE FUNCTION tollgate_notify_feed();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS exceptions_app_delivery_notify_feed ON exceptions_app_delivery;
DROP FUNCTION IF EXISTS tollgate_notify_feed();
DROP TRIGGER IF EXISTS exceptions_app_exceptionitem_notify_final ON exceptions_app_exceptionitem;
DROP FUNCTION IF EXISTS tollgate_notify_item_final();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("exceptions_app", "0012_worker_consumers")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
