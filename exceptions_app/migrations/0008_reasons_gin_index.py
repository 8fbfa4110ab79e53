"""PostgreSQL only: a GIN index for searching items by reason code (JSON containment on
``reasons``). SQLite has no GIN; there the search matches the stored text instead."""

from django.db import migrations


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS item_reasons_gin ON exceptions_app_exceptionitem USING gin (reasons jsonb_path_ops)",
            params=None,
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS item_reasons_gin", params=None)


class Migration(migrations.Migration):
    dependencies = [("exceptions_app", "0007_histogram_totals")]
    operations = [migrations.RunPython(forward, backward)]
