"""The worker process: the host's background jobs run apart from the process serving HTTP.

Bitrix24 waits for each webhook's answer, and the answer should take milliseconds. A drain, when
a batch answer arrives, parses, builds and writes a dozen appeals in a row; on the web process's
event loop every acknowledgement due meanwhile waits for that. So ``python -m hooks.host`` runs
its jobs in a second process (``--worker process``, its default): the web process hands each
``enqueue`` over a socket pair, and the worker runs it on its own ``InProcessJobQueue`` with the
same handlers. The work itself is in the database (the inbox); a worker that dies loses no work,
and the one started in its place finds it there.

One JSON object per line. The worker's first line in is its configuration (it holds the host
key, so it never goes on a command line or into the environment). Then, web → worker:
``{"op": "enqueue", "name", "key", "delay"}``, ``{"op": "idle", "id"}``, ``{"op": "stop"}``;
worker → web: ``{"op": "ready"}`` once it runs jobs, ``{"op": "idle", "id"}`` when idle. When
the web process is gone (end of input), the worker stops at once: a new host may already run
its own worker, and two drains of one portal should not overlap for longer than they must.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from hooks.host.inbox import JOB_NAMES, start_jobs
from hooks.host.inprocess_jobs import InProcessJobQueue
from hooks.host.jobs import JobHandler
from hooks.host.plugins import get_plugin_manager
from hooks.host.redact import install_log_redaction
from hooks.host.sqlite import open_repository
from hooks.host.state import Host, HostConfig

log = logging.getLogger("hooks.host.worker")

RESTART_DELAY_SECONDS = 1.0


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class WorkerProcessQueue:
    """``hooks.host.jobs.JobQueue`` whose jobs run in a worker process it starts and watches.

    Handlers are the worker's own (``hooks.host.inbox.start_jobs``), so ``register`` is refused
    here. A worker that exits while the queue runs is logged and started again.
    """

    def __init__(
        self, config: HostConfig, *, start_timeout: float = 30.0, stop_timeout: float = 15.0
    ) -> None:
        if config.http_transport is not None:
            raise ValueError("a worker process cannot use an in-process HTTP transport")
        self._config = config
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._state: Literal["new", "started", "stopped"] = "new"
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: list[bytes] = []  # for a worker not running yet
        self._idle_waiters: dict[int, asyncio.Future[None]] = {}
        self._next_idle_id = 0
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id (for the benchmark's CPU and memory figures)."""
        return self._process.pid if self._process is not None else None

    def register(self, name: str, handler: JobHandler) -> None:
        raise TypeError("jobs of a worker process run the worker's own handlers")

    async def enqueue(self, name: str, key: str, *, delay: float = 0.0) -> None:
        if name not in JOB_NAMES:
            raise LookupError(f"no handler registered for job {name!r}")
        self._send(_line({"op": "enqueue", "name": name, "key": key, "delay": max(delay, 0.0)}))

    def _send(self, message: bytes) -> None:
        """To the worker; before it runs (first start, or between two workers) kept for it.
        After ``stop()`` dropped: the work is in the database for the next start."""
        if self._state == "stopped":
            return
        if self._writer is None:
            self._waiting.append(message)
        else:
            self._writer.write(message)

    async def start(self) -> None:
        if self._state == "stopped":
            raise RuntimeError("a stopped job queue cannot be started again")
        if self._state == "started":
            return
        reader = await self._spawn()
        self._state = "started"
        self._supervisor = asyncio.create_task(self._supervise(reader), name="worker supervisor")

    async def stop(self) -> None:
        """Ask the worker to finish its running jobs and exit; kill it if it takes too long."""
        self._state = "stopped"
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        process, writer = self._process, self._writer
        if process is None or writer is None:  # never started, or between two workers
            self._fail_idle_waiters("the job queue stopped")
            return
        with contextlib.suppress(ConnectionError):
            writer.write(_line({"op": "stop"}))
            await writer.drain()
        try:
            await asyncio.wait_for(process.wait(), self._stop_timeout)
        except TimeoutError:
            log.error("the worker process did not stop in %s s: killing it", self._stop_timeout)
            process.kill()
            await process.wait()
        writer.close()
        self._fail_idle_waiters("the job queue stopped")

    async def idle(self) -> None:
        """Wait until the worker has no job running or due now."""
        if self._state == "stopped":
            return
        self._next_idle_id += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters[self._next_idle_id] = waiter
        self._send(_line({"op": "idle", "id": self._next_idle_id}))
        await waiter

    async def _spawn(self) -> asyncio.StreamReader:
        """Start a worker, hand it its configuration and what was asked for meanwhile."""
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hooks.host.worker",
                "--fd",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        try:
            writer.write(_line(_config_message(self._config)))
            ready = await asyncio.wait_for(reader.readline(), self._start_timeout)
            if json.loads(ready or b"{}").get("op") != "ready":
                raise RuntimeError("the worker process did not start (its log says why)")
        except BaseException:  # also a timeout, or the host stopping meanwhile
            process.kill()
            await process.wait()
            writer.close()
            raise
        log.info("worker process %s runs the host's jobs", process.pid)
        self._process, self._writer = process, writer
        for message in self._waiting:
            writer.write(message)
        self._waiting.clear()
        return reader

    async def _supervise(self, reader: asyncio.StreamReader) -> None:
        while True:
            while line := await reader.readline():
                reply = json.loads(line)
                waiter = self._idle_waiters.pop(int(reply.get("id", 0)), None)
                if reply.get("op") == "idle" and waiter is not None and not waiter.done():
                    waiter.set_result(None)
            assert self._process is not None and self._writer is not None
            code = await self._process.wait()
            self._fail_idle_waiters("the worker process exited")
            self._writer.close()
            self._writer = None
            log.error("the worker process exited with code %s; starting another", code)
            reader = await self._respawn()

    async def _respawn(self) -> asyncio.StreamReader:
        while True:
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            try:
                return await self._spawn()
            except (OSError, RuntimeError) as exc:
                log.error("could not start a worker process: %s", exc)

    def _fail_idle_waiters(self, why: str) -> None:
        for waiter in self._idle_waiters.values():
            if not waiter.done():
                waiter.set_exception(RuntimeError(why))
        self._idle_waiters.clear()


def _config_message(config: HostConfig) -> dict[str, Any]:
    key = config.host_key.get_secret_value() if config.host_key is not None else None
    return {
        "db": config.db,
        "public_url": config.public_url,
        "language": config.language,
        "schedule_seconds": config.schedule_seconds,
        "host_key": key,
    }


def _config_from(message: dict[str, Any]) -> HostConfig:
    key = message.get("host_key")
    return HostConfig(
        db=str(message["db"]),
        public_url=str(message["public_url"]),
        language=message["language"],
        schedule_seconds=float(message["schedule_seconds"]),
        host_key=SecretStr(key) if isinstance(key, str) else None,
        seed_demo_catalog=False,
    )


async def serve(sock: socket.socket) -> None:
    """The worker: read the configuration, run jobs as asked until told to stop."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    first = await reader.readline()
    if not first:
        return  # the web process went away before it said anything
    config = _config_from(json.loads(first))
    repo = await open_repository(config.db, key=config.host_key)
    queue = InProcessJobQueue()
    grace: float | None = None  # the queue's own, when the web process asks us to stop
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            host = Host(config, repo, get_plugin_manager(), queue, http)
            await start_jobs(host)
            writer.write(_line({"op": "ready"}))
            idle_replies: set[asyncio.Task[None]] = set()
            while line := await reader.readline():
                message = json.loads(line)
                op = message.get("op")
                if op == "stop":
                    break
                if op == "enqueue":
                    name, key = str(message["name"]), str(message["key"])
                    await queue.enqueue(name, key, delay=float(message["delay"]))
                elif op == "idle":
                    task = asyncio.create_task(_reply_when_idle(queue, writer, message["id"]))
                    idle_replies.add(task)
                    task.add_done_callback(idle_replies.discard)
            else:
                log.warning("the web process is gone: the worker stops now")
                grace = 0.0
            await queue.stop(grace=grace)
    finally:
        await repo.close()
        writer.close()


async def _reply_when_idle(
    queue: InProcessJobQueue, writer: asyncio.StreamWriter, id_: Any
) -> None:
    await queue.idle()
    writer.write(_line({"op": "idle", "id": id_}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hooks.host.worker",
        description="The host's job worker; started by the host, not by hand.",
    )
    parser.add_argument("--fd", type=int, required=True, help="the socket to the web process")
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group: the web process stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s [worker]: %(message)s"
    )
    install_log_redaction()
    asyncio.run(serve(socket.socket(fileno=args.fd)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
