"""How the host's PostgreSQL pools check a connection before lending it, without a round trip.

psycopg_pool's own check (``AsyncConnectionPool.check_connection``) sends an empty query on
every checkout, so that a pool outlives a restart of the server: a webhook's answer then costs
one more round trip to PostgreSQL for each query it makes, which was a tenth of the web
process's CPU under a burst of many portals. An idle pooled connection has nothing to read
unless the server has spoken: a server that stops or crashes closes its backends' sockets (with
an error message first, when it can), so a connection whose socket is readable is the one that
needs the real check, and a quiet one is lent at once.

A connection found broken means the server went away, and the pool's other idle connections
went with it. psycopg_pool finds them one checkout at a time and waits longer after each
(1 s, 2 s, 4 s…), so after a crash a request could wait out the pool's whole timeout (30 s) on
stale connections while the server had long been back. So the first broken one found has the
pool check all its idle connections at once (``AsyncConnectionPool.check``), which replaces the
broken ones, and the request's next try finds a new connection.

What this misses, a peer gone without closing (a network cut), the empty query would only
notice after a timeout too; the statement then fails as it would have, and the pool replaces
the connection when it comes back broken.
"""

from __future__ import annotations

import asyncio
import logging
import select
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("hooks.host.pg_pool")


class QuietCheck:
    """The ``check`` of one pool (``bind`` it to the pool once made): see the module."""

    def __init__(self) -> None:
        self._pool: AsyncConnectionPool[Any] | None = None
        self._sweep: asyncio.Task[None] | None = None

    def bind(self, pool: AsyncConnectionPool[Any]) -> AsyncConnectionPool[Any]:
        self._pool = pool
        return pool

    async def __call__(self, conn: AsyncConnection[Any]) -> None:
        """Raise if ``conn`` is closed, or if the server has spoken and it no longer answers."""
        poller = select.poll()  # not select.select: a busy process may have fds past 1024
        poller.register(conn.fileno(), select.POLLIN)  # fileno() raises for a closed one
        if not poller.poll(0):
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            self._sweep_pool()
            raise

    def _sweep_pool(self) -> None:
        """Check every idle connection of the pool, one sweep at a time."""
        if self._pool is not None and (self._sweep is None or self._sweep.done()):
            self._sweep = asyncio.get_running_loop().create_task(self._check_all(self._pool))

    @staticmethod
    async def _check_all(pool: AsyncConnectionPool[Any]) -> None:
        try:
            await pool.check()
        except Exception:  # the pool closing meanwhile: its next checkout will tell
            log.warning("could not check the idle connections of %r", pool.name, exc_info=True)


def pool_checking_quietly(**kwargs: Any) -> AsyncConnectionPool[Any]:
    """An ``AsyncConnectionPool`` with a ``QuietCheck``: for the host's own pools, and for a
    library that sets its own ``check`` (procrastinate's ``pool_factory``)."""
    check = QuietCheck()
    return check.bind(AsyncConnectionPool(**{**kwargs, "check": check}))
