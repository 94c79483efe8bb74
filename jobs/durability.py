"""Writes that need not wait for the disk.

On PostgreSQL a commit normally waits until its WAL record is flushed to disk
(several milliseconds on this kind of machine, the largest cost of a short
job). Claims, heartbeats, progress and `published_at` are written with
`synchronous_commit = off`: they are visible to every other session at once and
can never corrupt anything; a crash of the *database server* may forget the
last fraction of a second of them, which the sweeper repairs (a forgotten claim
or `published_at` makes it run or publish the job again, at least once, as after
a worker loss). A job's outcome and its result row are committed durably.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

# Joined into an UPDATE run in autocommit, this makes that one statement's commit
# not wait for the disk, in a single round trip: set_config(..., true) lasts until
# the end of the statement's own transaction (PostgreSQL only).
_RELAXED_FROM = "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed"


def relaxed_from() -> str:
    """The FROM clause above on PostgreSQL, nothing elsewhere."""
    return _RELAXED_FROM if connection.vendor == "postgresql" else ""


@contextmanager
def commit_without_waiting_for_disk() -> Iterator[None]:
    """A transaction whose commit does not wait for the WAL flush (PostgreSQL only)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
