"""How the host's PostgreSQL pools check a connection before lending it, without a round trip.

psycopg_pool's own check (``AsyncConnectionPool.check_connection``) sends an empty query on
every checkout, so that a pool outlives a restart of the server: a webhook's answer then costs
one more round trip to PostgreSQL for each query it makes, which was a tenth of the web
process's CPU under a burst of many portals. An idle pooled connection has nothing to read
unless the server has spoken: a server that stops or crashes closes its backends' sockets (with
an error message first, when it can), so a connection whose socket is readable is the one that
needs the real check, and a quiet one is lent at once.

What this misses, a peer gone without closing (a network cut), the empty query would only
notice after a timeout too; the statement then fails as it would have, and the pool replaces
the connection when it comes back broken.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


async def check_quietly(conn: AsyncConnection[Any]) -> None:
    """Raise if ``conn`` is closed, or if the server has spoken and it no longer answers."""
    poller = select.poll()  # not select.select: a busy process may have descriptors past 1024
    poller.register(conn.fileno(), select.POLLIN)  # fileno() raises for a closed connection
    if poller.poll(0):
        await AsyncConnectionPool.check_connection(conn)


def pool_checking_quietly(**kwargs: Any) -> AsyncConnectionPool[Any]:
    """An ``AsyncConnectionPool`` with ``check_quietly``, for a library that sets its own
    ``check`` (procrastinate's ``pool_factory``)."""
    return AsyncConnectionPool(**{**kwargs, "check": check_quietly})
