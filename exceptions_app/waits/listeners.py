"""The hub's single listener thread per process.

On PostgreSQL it LISTENs on ``tollgate_wait``; the triggers of migration 0019 notify there when an
item reaches a final status (``i<id>``) and when a resolution enters the feed (``w<workflow id>``).
NOTIFY is transactional, so a waiter is woken only once the change is committed and readable.
Elsewhere (the embedded SQLite default) one thread polls for the keys that have waiters, one query
per interval for the whole process, and only while someone waits.
"""

import logging
import threading

from django.conf import settings
from django.db import connection, connections

logger = logging.getLogger(__name__)

CHANNEL = "tollgate_wait"
RECONNECT_MAX_SECONDS = 10.0


class Listener:
    def __init__(self, hub):
        self.stopping = threading.Event()
        if connections["default"].vendor == "postgresql":
            target, name = _listen_postgres, "tollgate-wait-listener"
        else:
            target, name = _poll, "tollgate-wait-poller"
        self.thread = threading.Thread(target=target, args=(hub, self.stopping), name=name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


def listener_start(hub) -> Listener:
    return Listener(hub)


def _connection_params() -> dict:
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    # A half-open TCP connection (a peer gone without a FIN) is noticed within about a minute.
    return {**params, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def _listen_postgres(hub, stopping: threading.Event) -> None:
    import psycopg

    backoff = 0.5
    while not stopping.is_set():
        try:
            with psycopg.connect(**_connection_params(), autocommit=True) as listening:
                listening.execute(f"LISTEN {CHANNEL}")
                logger.info("wait listener connected")
                backoff = 0.5
                # Anything that changed before LISTEN took effect is re-read by every waiter.
                hub.notify_all()
                while not stopping.is_set():
                    # Each notification wakes its waiters as it arrives; the timeout only lets the loop
                    # look at ``stopping`` (collecting them until it ran out cost 0.5 s on average).
                    for notification in listening.notifies(timeout=1.0):
                        hub.notify([notification.payload])
        except Exception:
            logger.warning("wait listener lost its connection; reconnecting in %.1f s", backoff, exc_info=True)
            stopping.wait(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)


def _poll(hub, stopping: threading.Event) -> None:
    from exceptions_app.models import Delivery, ExceptionItem
    from exceptions_app.models.items import TERMINAL_STATUSES
    from exceptions_app.services.feed import FEED_ENTRIES

    last_delivery: int | None = None
    while not stopping.wait(settings.TOLLGATE_WAIT_POLL_SECONDS):
        keys = hub.keys()
        if not keys:
            last_delivery = None
            continue
        try:
            item_ids = [int(key[1:]) for key in keys if key.startswith("i")]
            woken: set[str] = set()
            for start in range(0, len(item_ids), 500):
                finished = ExceptionItem.objects.filter(
                    pk__in=item_ids[start : start + 500], status__in=TERMINAL_STATUSES
                ).values_list("pk", flat=True)
                woken.update(f"i{pk}" for pk in finished)
            if any(key.startswith("w") for key in keys):
                newest = Delivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
                if last_delivery is None:
                    woken.update(key for key in keys if key.startswith("w"))
                elif newest > last_delivery:
                    changed = (
                        Delivery.objects.filter(FEED_ENTRIES, pk__gt=last_delivery, pk__lte=newest)
                        .values_list("workflow_id", flat=True)
                        .distinct()
                    )
                    woken.update(f"w{workflow_id}" for workflow_id in changed)
                last_delivery = newest
            if woken:
                hub.notify(woken)
        except Exception:
            logger.warning("wait poller failed; trying again", exc_info=True)
            connection.close()
    connection.close()
