"""kombu's Redis transport, with one Redis client per channel.

kombu builds a new `redis.Redis` for every publish, every delivered message's
unacked-index write and every ack (`Channel.conn_or_acquire`), and each build copies
redis-py's table of ~300 response callbacks: ~0.1 ms of CPU each time, the largest
single entry in a worker's profile per message and one more in every job trigger
(docs/benchmarks.md, "Jobs"). A `redis.Redis` is safe to share between threads (it
takes a connection from the channel's pool per command), so a channel keeps one,
and builds a new one when kombu replaces its pool (after a fork or a disconnect).

Used for `redis://` and `rediss://` broker URLs (config/settings.py).
"""

from __future__ import annotations

from contextlib import contextmanager

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _reused_client: tuple[object, object] | None = None  # (the pool it was built on, the client)

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        pool = self.pool
        reused = self._reused_client
        if reused is None or reused[0] is not pool:
            reused = self._reused_client = (pool, self._create_client())
        yield reused[1]


class Transport(kombu_redis.Transport):
    Channel = Channel
