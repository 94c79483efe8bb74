"""A Redis cache that a frozen or dead Redis cannot turn into 500s.

Throttles, cached medians and locks read the cache on every request. When Redis
does not answer within its (short) socket timeout, this backend logs a warning
once, serves from a per-process memory cache for CACHE_RETRY_AFTER_SECONDS
without asking Redis again (so only one request pays the timeout), then tries
Redis again. Throttles therefore degrade to a per-process limit instead of
failing; the `cache` health check still reports the outage (it asks Redis
through `shared`).
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

CACHE_ERRORS = (RedisError, OSError)
_METHODS = ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many", "clear")


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client builds a new `redis.Redis` (and its table of ~300 response
    callbacks) for every cache call: 0.08 ms of CPU each, six times per job trigger.
    A `redis.Redis` is safe to share (it takes a connection from the pool per
    command), so keep one per connection pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = super().get_client(key, write=write)
        return client


class ResilientRedisCache(RedisCache):
    """RedisCache with a per-process fallback while Redis does not answer."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        self.retry_after = float(params.get("RETRY_AFTER", 10.0))
        self._fallback = LocMemCache(
            f"fallback-{id(self)}",
            {
                "TIMEOUT": params.get("TIMEOUT", 300),
                "KEY_PREFIX": params.get("KEY_PREFIX", ""),
                "VERSION": params.get("VERSION", 1),
                "OPTIONS": {"MAX_ENTRIES": 10000},
            },
        )
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def shared(self) -> RedisCache:
        """This cache without the fallback: raises when Redis does not answer."""
        return _Shared(self)

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    def _call(self, name: str, *args, **kwargs):
        if self.degraded:
            return getattr(self._fallback, name)(*args, **kwargs)
        try:
            return getattr(super(), name)(*args, **kwargs)
        except CACHE_ERRORS as exc:
            with self._lock:
                first = not self.degraded
                self._down_until = time.monotonic() + self.retry_after
            if first:
                logger.warning(
                    "The cache (Redis) does not answer (%s: %s): using a per-process cache for %g s; "
                    "throttles count per process meanwhile",
                    type(exc).__name__,
                    exc,
                    self.retry_after,
                )
            return getattr(self._fallback, name)(*args, **kwargs)


def _wrap(name: str):
    def method(self, *args, **kwargs):
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = getattr(RedisCache, name).__doc__
    return method


for _name in _METHODS:
    setattr(ResilientRedisCache, _name, _wrap(_name))


class _Shared:
    """The Redis side of a ResilientRedisCache (for the health check)."""

    def __init__(self, cache: ResilientRedisCache) -> None:
        self._cache = cache

    def __getattr__(self, name: str):
        bound = getattr(RedisCache, name)
        return lambda *args, **kwargs: bound(self._cache, *args, **kwargs)
