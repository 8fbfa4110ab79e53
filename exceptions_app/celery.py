import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exceptions_app.settings")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _connections_release(sender=None, **_signal_kwargs) -> None:
    """What Django does around a request, around each task: a pooled connection goes back to the pool
    (a broken one is discarded), an unpooled one closes once past CONN_MAX_AGE or unusable. Celery's own
    per-task close is off (CELERY_DB_REUSE_MAX in settings), as it closed the pool itself."""
    from django.db import close_old_connections

    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # run in the caller's process, maybe inside its transaction: its connection is not ours
    close_old_connections()
