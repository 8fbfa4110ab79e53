"""Short-lived per-process caches for the lookups every API request repeats: the token, the
workflow it submits to, the queue a hold lands in.

Each costs a database round trip per request, and at hundreds of requests a second those round
trips are most of the intake's time. Entries live ``TOLLGATE_LOCAL_CACHE_SECONDS`` (default 5):
any change to a token, principal, user, workflow, policy or queue made in this process clears
every cache at once (and again when its transaction commits, so a reader cannot re-cache the
old row in between); a change made by another process shows within that time. Cached objects
are shared between threads and only read.
"""

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from cachetools import TTLCache
from django.conf import settings
from django.db import transaction
from django.db.models import signals

T = TypeVar("T")
_MAX_ENTRIES = 10_000
_caches: list["LocalCache"] = []


class LocalCache:
    def __init__(self, name: str, *, timer: Callable[[], float] = time.monotonic):
        self.name, self._timer = name, timer
        self._entries: TTLCache | None = None
        self._lock = threading.Lock()
        # Bumped by clear(): a value loaded before a clear is not stored after it.
        self._generation = 0
        _caches.append(self)

    def _store(self) -> TTLCache | None:
        seconds = settings.TOLLGATE_LOCAL_CACHE_SECONDS
        if seconds <= 0:
            return None
        if self._entries is None or self._entries.ttl != seconds:
            self._entries = TTLCache(maxsize=_MAX_ENTRIES, ttl=seconds, timer=self._timer)
        return self._entries

    def get_or_load(self, key: Hashable, load: Callable[[], T | None]) -> T | None:
        """The cached value for ``key``, else ``load()``; a None result is not kept."""
        with self._lock:
            store = self._store()
            if store is not None:
                # One lookup, not `key in store` then `store[key]`: an entry can expire between the two,
                # and TTLCache raises KeyError for an expired key.
                try:
                    return store[key]
                except KeyError:
                    pass
            generation = self._generation
        value = load()
        if value is not None and store is not None:
            with self._lock:
                if generation == self._generation:
                    store[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            if self._entries is not None:
                self._entries.clear()


def local_caches_clear(**_signal_kwargs) -> None:
    """Forget every cached lookup in this process (a signal receiver, hence the keyword catch-all)."""
    for cache in _caches:
        cache.clear()


def _changed(**_signal_kwargs) -> None:
    local_caches_clear()
    if not transaction.get_autocommit():
        transaction.on_commit(local_caches_clear)


def local_caches_connect() -> None:
    """Clear the caches whenever a row they may hold changes (called once from AppConfig.ready)."""
    from django.contrib.auth import get_user_model

    from exceptions_app.models import ApiToken, PolicyVersion, Principal, Queue, Team, Workflow

    for model in (ApiToken, Principal, get_user_model(), Workflow, PolicyVersion, Queue, Team):
        signals.post_save.connect(_changed, sender=model, dispatch_uid=f"local-cache-save-{model.__name__}")
        signals.post_delete.connect(_changed, sender=model, dispatch_uid=f"local-cache-delete-{model.__name__}")
    for through in (Principal.workflows.through, Principal.teams.through, Queue.teams.through):
        signals.m2m_changed.connect(_changed, sender=through, dispatch_uid=f"local-cache-m2m-{through.__name__}")
