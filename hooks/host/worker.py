"""Workers: the processes that run the host's jobs, which live in the database.

``python -m hooks.host worker --db URL [--concurrency N]`` runs one alone, on any machine that
reaches the database; any number may run. ``python -m hooks.host`` starts one local worker
beside its web process by default (``LocalWorker``) and starts it again whenever it exits, for
whatever reason: the jobs it held are in the database, and the new worker (or another one)
takes them. Web processes and workers share nothing but the database. A worker has no web
server; with ``--metrics-port`` it serves its own Prometheus metrics (``hooks.host.metrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from typing import cast

import httpx
import uvloop
from pydantic import SecretStr

from hooks.host.database import DatabaseUnavailable, open_repository
from hooks.host.host_key import ENV, HostKeyError, resolve_host_key
from hooks.host.inbox import DRAIN, LOCKED_JOBS, register_jobs, start_scheduler
from hooks.host.jobs import open_job_queue
from hooks.host.logs import add_log_format_argument, configure_logging
from hooks.host.metrics import HostMetrics
from hooks.host.plugins import get_plugin_manager
from hooks.host.state import Host, HostConfig
from hooks.models import Language

log = logging.getLogger("hooks.host.worker")

RESTART_DELAY_SECONDS = 1.0
PARENT_CHECK_SECONDS = 1.0


async def serve_jobs(host: Host, stop: asyncio.Event) -> None:
    """Run the host's jobs with ``host``'s queue until ``stop`` is set. A starting worker asks
    for the scheduler and for the drains of deliveries already waiting."""
    register_jobs(host)
    await start_scheduler(host)
    for integration_id in await host.repo.pending_integrations():
        await host.queue.enqueue(DRAIN, str(integration_id))
    await host.queue.run_worker(stop, concurrency=host.config.concurrency)


async def run_worker(
    config: HostConfig, stop: asyncio.Event, metrics: HostMetrics | None = None
) -> None:
    """A worker process's life: open the database, run jobs; when the database goes away (a
    restart of PostgreSQL), open it again and go on, counting in the same ``metrics``."""
    metrics = metrics or HostMetrics()
    while not stop.is_set():
        try:
            repo = await open_repository(config.db, key=config.host_key)
            try:
                queue = await open_job_queue(config.db, locked=LOCKED_JOBS)
                try:
                    async with httpx.AsyncClient(timeout=30.0) as http:
                        host = Host(
                            config, repo, get_plugin_manager(), queue, http, metrics=metrics
                        )
                        await serve_jobs(host, stop)
                finally:
                    await queue.close()
            finally:
                await repo.close()
        except (HostKeyError, ValueError):  # no retry mends a wrong key or URL
            raise
        except DatabaseUnavailable as exc:  # not up yet, or restarting: one line, no trace
            log.warning("%s; trying again in %s s", exc, RESTART_DELAY_SECONDS)
        except Exception:
            if stop.is_set():
                return
            log.exception("the worker lost its database; starting again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RESTART_DELAY_SECONDS)


class LocalWorker:
    """One worker process beside the web process, started again whenever it exits."""

    def __init__(self, config: HostConfig) -> None:
        if config.http_transport is not None:
            raise ValueError("a worker process cannot use an in-process HTTP transport")
        self._config = config
        self._process: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The running worker's process id (the benchmark reads its CPU and memory)."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        await self._spawn()
        self._watch = asyncio.create_task(self._restart_when_gone(), name="local worker")

    async def stop(self, *, timeout: float = 15.0) -> None:
        """Ask the worker to finish its running jobs and exit; kill it if it takes too long."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            log.error("the worker process did not stop in %s s: killing it", timeout)
            process.kill()
            await process.wait()

    async def _spawn(self) -> None:
        config = self._config
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hooks.host",
            "worker",
            "--db",
            config.db,
            "--public-url",
            config.public_url,
            "--lang",
            config.language,
            "--schedule-seconds",
            str(config.schedule_seconds),
            "--concurrency",
            str(config.concurrency),
            "--log-format",
            config.log_format,
            *_metrics_arguments(config.worker_metrics),
            "--parent-pid",
            str(os.getpid()),
            "--key-from-stdin",
            stdin=subprocess.PIPE,
        )
        assert self._process.stdin is not None
        # The key goes through a pipe: never on a command line, where anyone may read it.
        key = config.host_key.get_secret_value() if config.host_key is not None else ""
        self._process.stdin.write(key.encode() + b"\n")
        await self._process.stdin.drain()
        self._process.stdin.close()
        log.info("worker process %s runs the host's jobs", self._process.pid)

    async def _restart_when_gone(self) -> None:
        while True:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            log.error("the worker process exited with code %s; starting another", code)
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            try:
                await self._spawn()
            except OSError as exc:
                log.error("could not start a worker process: %s", exc)


def _metrics_arguments(at: tuple[str, int] | None) -> list[str]:
    if at is None:
        return []
    address, port = at
    return ["--metrics-address", address, "--metrics-port", str(port)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hooks.host worker",
        description="A worker: runs the host's jobs (drains, periodic work) from the database.",
    )
    parser.add_argument("--db", required=True, help="SQLite file or postgresql:// URL")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs run at once")
    parser.add_argument("--public-url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--lang", choices=["ru", "en"], default=os.environ.get("ANALYTICS_HOST_LANG", "ru")
    )
    parser.add_argument("--schedule-seconds", type=float, default=60.0)
    parser.add_argument(
        "--demo", action="store_true", help=f"without ${ENV}, the key kept beside the database"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve this worker's Prometheus metrics on http://ADDRESS:PORT/metrics",
    )
    parser.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDRESS")
    add_log_format_argument(parser)
    # Set by the web process that starts its local worker.
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key-from-stdin", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def _until_parent_gone(parent: int, stop: asyncio.Event) -> None:
    """A local worker whose web process is gone stops: the next web process starts its own."""
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    log.warning("the web process is gone: the worker stops")
    stop.set()


async def _main(config: HostConfig, parent: int | None, metrics: HostMetrics) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if parent is None:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    watch = None if parent is None else asyncio.create_task(_until_parent_gone(parent, stop))
    try:
        await run_worker(config, stop, metrics)
    finally:
        if watch is not None:
            watch.cancel()


def _serve_metrics(metrics: HostMetrics, address: str, port: int) -> None:
    try:
        metrics.serve(port, address)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise ValueError(f"cannot serve metrics on {address}:{port}: {exc.strerror}") from exc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.parent_pid is not None:
        # Ctrl-C in a terminal reaches the whole process group: the web process stops us.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(args.log_format, role="worker")
    try:
        if args.key_from_stdin:
            line = sys.stdin.readline().strip()
            key = SecretStr(line) if line else None
        else:
            key = resolve_host_key(args.db, demo=args.demo)
        config = HostConfig(
            db=args.db,
            public_url=args.public_url,
            language=cast(Language, args.lang),
            schedule_seconds=args.schedule_seconds,
            concurrency=args.concurrency,
            host_key=key,
            seed_demo_catalog=False,
        )
        metrics = HostMetrics()
        if args.metrics_port is not None:
            _serve_metrics(metrics, args.metrics_address, args.metrics_port)
        uvloop.run(_main(config, args.parent_pid, metrics))
    except (HostKeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
