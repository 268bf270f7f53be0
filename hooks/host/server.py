"""How the web process serves HTTP: uvicorn's limits, and the header timeout uvicorn lacks.

A client that opens a connection and sends its request head slowly, or never, holds a socket
and a slot of the server for as long as it likes: uvicorn (h11) has no timeout for reading a
request head (its issue #157 lists one as wanted, unimplemented), and its keep-alive timeout
stops as soon as one byte arrives. So the host's connections use ``GuardedH11Protocol``: from
the moment a connection waits for a request (when it opens, and after each response), the whole
head must arrive within ``header_timeout`` seconds, however it is trickled, or the connection
is closed. Once the head is in, the timer is off: a slow handler is never cut short.

The other limits are uvicorn's own, set here explicitly so that the README can state them: an
idle kept-alive connection is closed after ``KEEP_ALIVE_SECONDS``, and a request head still
incomplete past ``MAX_HEAD_BYTES`` gets ``400``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("hooks.host.server")

HEADER_TIMEOUT_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 5
MAX_HEAD_BYTES = 16 * 1024


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (see the module)."""

    header_timeout: ClassVar[float] = HEADER_TIMEOUT_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """Arm the deadline when the connection starts waiting for a head (not again while
        it waits: bytes trickling in do not extend it), disarm it once the head is in."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not waiting:
            self._stop_head_timer()
        elif self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("no request head within %g s: connection closed", self.header_timeout)
            self.transport.close()


def guarded_protocol(header_timeout: float) -> type[GuardedH11Protocol]:
    """``GuardedH11Protocol`` with its own ``header_timeout`` (uvicorn takes a class)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})


def server_options(header_timeout: float = HEADER_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` (or ``uvicorn.Config``) that set the limits."""
    return {
        "http": guarded_protocol(header_timeout),
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    }
