"""``python -m hooks.host --db PATH|URL --host 127.0.0.1 --port N [--public-url URL] [--demo]``:
the web process (with a local worker unless ``--worker none``); ``python -m hooks.host worker
--db URL [--concurrency N]``: a worker alone (``hooks.host.worker``)."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from pathlib import Path
from typing import cast

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from hooks.host import worker
from hooks.host.account_time import DEFAULT_ZONE, account_zone
from hooks.host.app import create_app
from hooks.host.catalog import CatalogFileError, load_catalog_file
from hooks.host.database import DatabaseUnavailable, open_repository
from hooks.host.host_key import ENV, HostKeyError, resolve_host_key
from hooks.host.inbox import LOCKED_JOBS
from hooks.host.jobs import open_job_queue
from hooks.host.logs import add_log_format_argument, configure_logging
from hooks.host.ratelimit import Rate
from hooks.host.server import HEADER_TIMEOUT_SECONDS, server_options
from hooks.host.state import HostConfig
from hooks.models import Language

RATE_LIMITS = {"session_rate": "POST /api/sessions/{id}", "visit_rate": "POST /api/visits"}


def _rate(text: str) -> Rate | None:
    try:
        return Rate.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hooks.host", description="The reference analytics host."
    )
    parser.add_argument(
        "--db", required=True, help="SQLite file (or sqlite:///path), or a postgresql:// URL"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--public-url", help="the address browsers and Bitrix24 reach this host at")
    parser.add_argument(
        "--schedule-seconds",
        type=float,
        default=60.0,
        help="how often each integration's periodic work runs (0: never)",
    )
    parser.add_argument(
        "--worker",
        choices=["process", "inline", "none"],
        default="process",
        help="who runs the jobs: a local worker process the host restarts whenever it exits"
        " (default), this process's own loop, or none (workers started apart with"
        " 'python -m hooks.host worker')",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="jobs the local worker runs at once"
    )
    parser.add_argument(
        "--worker-metrics-port",
        type=int,
        metavar="PORT",
        help="the local worker serves its own Prometheus metrics on this port (what it does:"
        " REST requests, drains, rate-limit waits), on the address of --host",
    )
    add_log_format_argument(parser)
    parser.add_argument("--catalog", type=Path, help="load the account catalog from this JSON file")
    parser.add_argument(
        "--lang",
        choices=["ru", "en"],
        default=os.environ.get("ANALYTICS_HOST_LANG", "ru"),
        help="language of the pages (default ru, or $ANALYTICS_HOST_LANG)",
    )
    parser.add_argument(
        "--timezone",
        type=account_zone,
        default=os.environ.get("ANALYTICS_HOST_TZ", DEFAULT_ZONE),
        help=f"the account's time zone: times and days on the pages (default {DEFAULT_ZONE},"
        " or $ANALYTICS_HOST_TZ)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"without ${ENV}, encrypt the secrets with a key kept in a file beside the database",
    )
    parser.add_argument(
        "--header-timeout",
        type=_seconds,
        default=HEADER_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="a connection that has not sent a whole request head this long after it opened (or"
        f" after its last response) is closed (default {HEADER_TIMEOUT_SECONDS:g})",
    )
    for name, route in RATE_LIMITS.items():
        default: Rate = getattr(HostConfig, name)
        parser.add_argument(
            f"--{name.removesuffix('_rate')}-limit",
            dest=name,
            type=_rate,
            default=argparse.SUPPRESS,  # absent: HostConfig's default
            metavar="PER_SECOND,BURST",
            help=f"requests per client IP on {route}"
            f" (default {default.per_second:g},{default.burst}; 0: no limit)",
        )
    return parser.parse_args(argv)


async def check_database(config: HostConfig) -> None:
    """Open the database (and its jobs) once before serving, so a missing or wrong key, or a
    database that cannot hold jobs, stops the start with one clear line instead of a failed
    startup deep in the server's log."""
    repo = await open_repository(config.db, key=config.host_key)
    await repo.close()
    queue = await open_job_queue(config.db, locked=LOCKED_JOBS)
    await queue.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return worker.main(argv[1:])
    args = parse_args(argv)
    configure_logging(args.log_format, role="web")
    if args.catalog is not None:
        try:
            load_catalog_file(args.catalog)  # fail before serving, with the file's own error
        except CatalogFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    try:
        config = HostConfig(
            db=args.db,
            public_url=public_url,
            language=cast(Language, args.lang),
            timezone=args.timezone.key,
            catalog_path=args.catalog,
            schedule_seconds=args.schedule_seconds,
            worker=args.worker,
            log_format=args.log_format,
            worker_metrics=None
            if args.worker_metrics_port is None
            else (args.host, args.worker_metrics_port),
            concurrency=args.concurrency,
            host_key=resolve_host_key(args.db, demo=args.demo),
            **{name: getattr(args, name) for name in RATE_LIMITS if hasattr(args, name)},
        )
        asyncio.run(check_database(config))
    except (HostKeyError, DatabaseUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"Analytics host: {public_url}/  (Raw data → Appeals and goals: {public_url}/raw/appeals)",
        flush=True,
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level="info",
        # JSON: uvicorn's records go to the root logger's JSON handler, not its own text one.
        log_config=None if args.log_format == "json" else LOGGING_CONFIG,
        **server_options(args.header_timeout),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
