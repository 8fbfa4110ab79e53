"""PostgreSQL-only guards: the audit log refuses UPDATE/DELETE, and the hot items table
gets aggressive autovacuum so claim churn does not bloat the claim index.

SQLite (the embedded default) has neither trigger language nor autovacuum knobs; there the
application's lack of any update/delete path is the guarantee.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tollgate_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exceptions_app_auditevent_append_only
    BEFORE UPDATE OR DELETE ON exceptions_app_auditevent
    FOR EACH ROW EXECUTE FUNCTION tollgate_audit_append_only();
ALTER TABLE exceptions_app_exceptionitem SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
"""

BACKWARD = """
DROP TRIGGER IF EXISTS exceptions_app_auditevent_append_only ON exceptions_app_auditevent;
DROP FUNCTION IF EXISTS tollgate_audit_append_only();
ALTER TABLE exceptions_app_exceptionitem RESET (
    autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay
);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("exceptions_app", "0002_gate")]
    operations = [migrations.RunPython(forward, backward)]
