"""One hub per process: waiters subscribe to keys, one listener thread wakes them.

Keys are ``i<item id>`` (the item reached a final status) and ``w<workflow id>`` (a resolution of
the workflow entered the feed). A subscription remembers a wake-up that arrives while its owner is
not waiting, so the owner's order "subscribe, read, wait" never misses one. Every (re)connection of
the listener wakes every subscription: whatever changed while it was not listening is re-read.
"""

import asyncio
import logging
import threading
from collections.abc import Iterable

from django.conf import settings

logger = logging.getLogger(__name__)


class WaitersFull(Exception):
    """This process already holds as many waiters as it may (``TOLLGATE_WAITERS_PER_PROCESS``)."""


class Subscription:
    """A waiter's handle: ``await wait(timeout)`` (or ``wait_blocking``) returns True when woken."""

    __slots__ = ("_event", "_future", "_hub", "_lock", "_woken", "keys")

    def __init__(self, hub: "WaitHub", keys: tuple[str, ...]):
        self._hub = hub
        self.keys = keys
        self._lock = threading.Lock()
        self._woken = False
        self._future: asyncio.Future | None = None
        self._event: threading.Event | None = None

    def wake(self) -> None:
        """Called from the listener thread."""
        with self._lock:
            self._woken = True
            future, event = self._future, self._event
        if future is not None:
            future.get_loop().call_soon_threadsafe(_resolve, future)
        if event is not None:
            event.set()

    async def wait(self, timeout: float) -> bool:
        with self._lock:
            if self._woken:
                self._woken = False
                return True
            self._future = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._future, timeout=max(0.0, timeout))
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._future = None
                woken, self._woken = self._woken, False
        return woken

    def wait_blocking(self, timeout: float) -> bool:
        """For a WSGI server's thread (tests, ``runserver``): it sleeps, but nothing polls."""
        with self._lock:
            if self._woken:
                self._woken = False
                return True
            self._event = threading.Event()
        self._event.wait(max(0.0, timeout))
        with self._lock:
            self._event = None
            woken, self._woken = self._woken, False
        return woken

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(True)


class WaitHub:
    def __init__(self, *, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._by_key: dict[str, set[Subscription]] = {}
        self._count = 0
        self._listener = None

    @property
    def waiters(self) -> int:
        return self._count

    def subscribe(self, keys: Iterable[str]) -> Subscription:
        subscription = Subscription(self, tuple(keys))
        with self._lock:
            if self._count >= self.limit:
                raise WaitersFull(f"this process already holds {self._count} waiters")
            self._count += 1
            for key in subscription.keys:
                self._by_key.setdefault(key, set()).add(subscription)
            if self._listener is None:
                from exceptions_app.waits.listeners import listener_start

                self._listener = listener_start(self)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            removed = False
            for key in subscription.keys:
                waiting = self._by_key.get(key)
                if waiting is not None and subscription in waiting:
                    waiting.discard(subscription)
                    removed = True
                    if not waiting:
                        del self._by_key[key]
            if removed:
                self._count -= 1

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._by_key)

    def notify(self, keys: Iterable[str]) -> None:
        """Wake the subscribers of these keys (the listener calls this)."""
        with self._lock:
            woken = {subscription for key in keys for subscription in self._by_key.get(key, ())}
        for subscription in woken:
            subscription.wake()

    def stop(self) -> None:
        """Stop the listener (it closes its connection); the next subscription starts a new one."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def notify_all(self) -> None:
        with self._lock:
            woken = {subscription for waiting in self._by_key.values() for subscription in waiting}
        for subscription in woken:
            subscription.wake()


_hub: WaitHub | None = None
_hub_lock = threading.Lock()


def wait_hub() -> WaitHub:
    global _hub
    if _hub is None:
        with _hub_lock:
            if _hub is None:
                _hub = WaitHub(limit=settings.TOLLGATE_WAITERS_PER_PROCESS)
    return _hub


def item_key(item_id: int) -> str:
    return f"i{item_id}"


def workflow_key(workflow_id: int) -> str:
    return f"w{workflow_id}"
