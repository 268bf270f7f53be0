"""An ASGI app under a real uvicorn server on this event loop, and raw HTTP over its socket."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from tests.servers import free_port


@contextlib.asynccontextmanager
async def serving(
    app: Any, *, port: int | None = None, **options: Any
) -> AsyncIterator[tuple[str, int]]:
    """``app`` served on a loopback ``port`` (a free one by default) with uvicorn ``options``
    (logging left as the caller set it up); yields the address. The app's lifespan runs as in
    production."""
    port = port or free_port()
    settings: dict[str, Any] = {"log_config": None, "log_level": "info", **options}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **settings)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        await task


async def send_raw(address: tuple[str, int], request: bytes) -> bytes:
    """``request`` as written (no client library normalises its path); the whole answer."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


async def seconds_until_closed(
    address: tuple[str, int], sent: bytes, *, then: bytes = b"", limit: float
) -> float:
    """Open a connection, send ``sent`` (a whole request, whose answer is read, if ``then``
    follows), then ``then``, and wait: how long until the server closes the connection after
    the last bytes were sent (``TimeoutError`` if it holds it past ``limit`` seconds)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(sent)
        await writer.drain()
        if then:
            await reader.readuntil(b"\r\n\r\n")  # the first answer's head: the request is done
            writer.write(then)
            await writer.drain()
        start = time.monotonic()
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass
        return time.monotonic() - start
    finally:
        writer.close()
