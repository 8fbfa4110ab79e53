from django.db import migrations


class Migration(migrations.Migration):
    """The sweep wakes a drain instead of publishing a task per delivery, so nothing reads enqueued_at."""

    dependencies = [("exceptions_app", "0018_capacity_inputs")]
    operations = [migrations.RemoveField(model_name="delivery", name="enqueued_at")]
