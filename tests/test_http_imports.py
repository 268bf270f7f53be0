"""An HTTP request through httpx does no import work once the client is warm.

httpcore imports ``sniffio`` each time it sets up a lock or an event; since anyio stopped
requiring it (agronholm/anyio#1021) a missing ``sniffio`` makes that a failed import, a search
of ``sys.path`` on every request (encode/httpcore#1103): 0.3 ms of CPU per request on this
machine, a third of what a loopback request and its answer cost together. The package declares
``sniffio`` for this; the test notices if it goes missing.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

import httpx
import pytest

pytestmark = pytest.mark.anyio

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class ImportRecorder(importlib.abc.MetaPathFinder):
    """Notes every module Python had to look for; finds nothing itself."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.names.append(fullname)
        return None


@contextmanager
def recorded_imports() -> Iterator[list[str]]:
    recorder = ImportRecorder()
    sys.meta_path.insert(0, recorder)
    try:
        yield recorder.names
    finally:
        sys.meta_path.remove(recorder)


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def test_requests_on_a_warm_client_look_for_no_module() -> None:
    server = await asyncio.start_server(answer_ok, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.post("/warm", content=b"a=1")).text == "ok"
            with recorded_imports() as looked_for:
                for n in range(5):
                    assert (await http.post(f"/event/{n}", content=b"a=1")).status_code == 200
    finally:
        server.close()
        await server.wait_closed()
    assert looked_for == []
