# The span context Tollgate stores with what it raised, when tracing is on (exceptions_app/tracing/spans.py).
# A database default too: rows written by SQL that does not name the column (COPY, the benchmarks' loaders,
# an operator's backfill) get the empty value rather than a NOT NULL violation.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exceptions_app", "0023_captured_state_lz4"),
    ]

    operations = [
        migrations.AddField(
            model_name="exceptionitem",
            name="traceparent",
            field=models.CharField(blank=True, default="", db_default="", max_length=55),
        ),
        migrations.AddField(
            model_name="gatedecision",
            name="traceparent",
            field=models.CharField(blank=True, default="", db_default="", max_length=55),
        ),
    ]
