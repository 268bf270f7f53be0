"""A TCP relay that times how long the host takes to answer each webhook delivery.

The sandbox delivers events one at a time over a keep-alive connection, so on each connection a
request is followed by its response before the next request starts. The relay forwards bytes
untouched and times each exchange from the request's first byte to the response's first byte:
the acknowledgement latency Bitrix24 would see, less the network. It runs in a process of its
own (``python -m tests.bench.relay``) so that neither the sandbox's nor the bench's work can
delay its clock; in-process mode (the smoke test) runs it on the caller's loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import TextIO

import uvloop

CHUNK = 64 * 1024


class Relay:
    """Listens on ``port`` (0: any free one) and forwards to ``upstream_port`` on loopback."""

    def __init__(self, upstream_port: int, *, log: TextIO | None = None) -> None:
        self.upstream_port = upstream_port
        self.latencies: list[float] = []  # seconds, one per request/response exchange
        self._log = log
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def _record(self, seconds: float) -> None:
        self.latencies.append(seconds)
        if self._log is not None:
            self._log.write(f"{seconds:.6f}\n")
            self._log.flush()

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        sent_at: list[float] = []  # when the request now waiting for its answer began

        async def upstream() -> None:
            while chunk := await client_r.read(CHUNK):
                if not sent_at:
                    sent_at.append(time.perf_counter())
                up_w.write(chunk)
                await up_w.drain()
            up_w.close()

        async def downstream() -> None:
            while chunk := await up_r.read(CHUNK):
                if sent_at:
                    self._record(time.perf_counter() - sent_at.pop())
                client_w.write(chunk)
                await client_w.drain()
            client_w.close()

        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(upstream(), downstream())
        for writer in (client_w, up_w):
            writer.close()


async def _serve(port: int, upstream: int, out: Path) -> None:
    with out.open("w", encoding="ascii") as log:
        relay = Relay(upstream, log=log)
        await relay.start(port)
        print(f"relay 127.0.0.1:{port} -> 127.0.0.1:{upstream}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await relay.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.relay")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="one latency (s) per line")
    args = parser.parse_args(argv)
    uvloop.run(_serve(args.port, args.upstream, args.out))


if __name__ == "__main__":
    main()
