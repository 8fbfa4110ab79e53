from django.db import migrations, models


class Migration(migrations.Migration):
    """LangGraph's HumanInterrupt captured with a held output (exceptions_app/interrupts.py). A
    nullable column without a default: PostgreSQL adds it without rewriting the table."""

    dependencies = [("exceptions_app", "0020_breaker_recent")]

    operations = [
        migrations.AddField(model_name="exceptionitem", name="interrupt", field=models.JSONField(blank=True, null=True)),
    ]
