from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exceptions_app", "0015_replay_runs"),
    ]

    operations = [
        migrations.AddField(
            model_name="breakerstate",
            name="recent",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
