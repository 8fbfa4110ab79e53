"""Per-token rate limit: a fixed one-minute window counted with one atomic increment.

DRF's own SimpleRateThrottle keeps a list of every request time per client and rewrites it on
each request, which costs more than the intake itself at hundreds of requests a second. With
Redis the count is one round trip (INCR and EXPIRE NX pipelined); without it, the shared
database cache counts instead.
"""

import logging
import threading
import time

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60
_KEY_TTL = WINDOW_SECONDS + 5
_client: redis.Redis | None = None
_client_lock = threading.Lock()
logger = logging.getLogger(__name__)


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _client


def _count_in_redis(key: str) -> int:
    pipe = _redis().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, _KEY_TTL, nx=True)
    count, _ = pipe.execute()
    return count


def _count_in_cache(key: str) -> int:
    cache.add(key, 0, timeout=_KEY_TTL)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=_KEY_TTL)
        return 1


class TokenRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        token = request.auth
        if token is None or not hasattr(token, "prefix"):
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"tollgate:rate:{token.prefix}:{window}"
        try:
            count = _count_in_redis(key) if settings.REDIS_URL else _count_in_cache(key)
        except redis.RedisError as error:
            # The limit protects the service; refusing all traffic because its counter is down would not.
            logger.warning("rate limit not counted: %s", error)
            return True
        self._retry_after = (window + 1) * WINDOW_SECONDS - now
        return count <= settings.TOLLGATE_RATE_LIMIT_PER_MINUTE

    def wait(self) -> float:
        return max(1.0, self._retry_after)
