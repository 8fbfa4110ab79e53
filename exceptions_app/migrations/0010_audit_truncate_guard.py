"""PostgreSQL-only: the audit log also refuses TRUNCATE.

0003's row trigger stops UPDATE and DELETE, but TRUNCATE fires no row triggers, so one statement
could still empty the table. This adds a statement-level BEFORE TRUNCATE trigger. Like every
ordinary trigger it does not fire with session_replication_role = replica, which only a superuser
may set: that is how `manage.py flush` (and so the test suite) still empties the whole database
(see exceptions_app/management/commands/flush.py). Reversible: backward drops the trigger.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tollgate_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (TRUNCATE refused)' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exceptions_app_auditevent_no_truncate
    BEFORE TRUNCATE ON exceptions_app_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_audit_no_truncate();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS exceptions_app_auditevent_no_truncate ON exceptions_app_auditevent;
DROP FUNCTION IF EXISTS tollgate_audit_no_truncate();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("exceptions_app", "0009_live_counts_index")]
    operations = [migrations.RunPython(forward, backward)]
