import logging
import os
import threading

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exceptions_app.settings")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logger = logging.getLogger(__name__)


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


class ConsumerHeartbeat(bootsteps.StartStopStep):
    """Records, every TOLLGATE_CONSUMER_HEARTBEAT_SECONDS, which queues this worker consumes
    (exceptions_app.pipeline), from a thread so a slow database never stalls consuming."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **options) -> None:
        super().__init__(parent, **options)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, consumer) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._beat, args=(consumer,), name="tollgate-consumer-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self, consumer) -> None:
        from django.conf import settings
        from django.db import connection
        from django.utils import timezone

        from exceptions_app.pipeline import worker_consumer_record

        started_at = timezone.now()
        while True:
            queues = sorted(queue.name for queue in consumer.task_consumer.queues) if consumer.task_consumer else []
            try:
                worker_consumer_record(
                    hostname=consumer.hostname, queues=queues, pid=os.getpid(), started_at=started_at
                )
            except Exception:  # the database is away: say so, and try again next time
                logger.warning("Could not record the queues this worker consumes", exc_info=True)
            finally:
                connection.close()
            if self._stopping.wait(settings.TOLLGATE_CONSUMER_HEARTBEAT_SECONDS):
                return

    def stop(self, consumer) -> None:
        from django.db import connection

        from exceptions_app.pipeline import worker_consumer_remove

        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            worker_consumer_remove(hostname=consumer.hostname)
        except Exception:  # the database is away; the row ages out instead
            logger.warning("Could not remove this worker's consumer record", exc_info=True)
        finally:
            connection.close()


app.steps["consumer"].add(ConsumerHeartbeat)
