"""The scaled-out host on one machine, every part a real process: PostgreSQL, the sandbox
portal, the web process (``--worker none``) and N workers that share nothing but the database.

``make cluster`` runs it until Ctrl+C (``python -m tests.cluster``); the cluster soak
(``tests.soak.cluster``) uses the same ``Cluster`` to kill and restart its parts under load,
because a crash that matters is one of a real process, not of an in-process stand-in.

    python -m tests.cluster [--dir var] [--workers 3] [--web-port 8000] [--sandbox-port 8100]
                            [--pg-port 55432] [--schedule-seconds 60] [--sqlite FILE]
    python -m tests.cluster sandbox --port N --redirect-uri URL [--no-offline-events]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psycopg

from hooks.host.host_key import ENV, demo_key
from tests.postgres_server import PostgresServer, PostgresUnavailable
from tests.servers import free_port

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hooks", "b24_openlines_plugin", "tests")
UP_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
PR_SET_PDEATHSIG = 1


@dataclass
class ClusterConfig:
    """Where the cluster keeps its state and how it is laid out. ``pg_dir=None``: a throwaway
    PostgreSQL (removed by ``stop``); a port of 0 is a free one."""

    directory: Path = Path("var")
    # A SQLite file instead of PostgreSQL (no server, no restart_postgres): the embedded
    # database's jobs table serves several workers too, on one machine.
    sqlite: Path | None = None
    pg_dir: Path | None = Path("var/pg")
    pg_port: int = 55432
    durable: bool = True  # fsync on: a kept cluster (make cluster); off for soaks
    database: str = "analytics"
    web_port: int = 8000
    sandbox_port: int = 8100
    workers: int = 3
    concurrency: int = 8
    schedule_seconds: float = 60.0
    offline_events: bool = True  # the sandbox plan's rest_offline_extended
    seed_crm: bool = True  # the sandbox's few leads and a deal that are not chats
    key_file: Path | None = None  # default: <directory>/cluster.key
    log_dir: Path | None = None  # default: <directory>/cluster-logs
    # Run a copy of the code taken at start (in <directory>/code): a part restarted mid-run
    # runs the same version as the others even while the work tree is being edited.
    snapshot: bool = False


def _die_with_parent() -> None:
    """In the child before exec: a harness killed without cleaning up takes its children."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Part:
    """One process of the cluster and how to start it again."""

    name: str
    command: list[str]
    log_path: Path
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, env: dict[str, str]) -> None:
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"\n=== {time.strftime('%H:%M:%S')} start {self.name}\n".encode())
        self._log.flush()
        # Their own session: Ctrl+C reaches the harness only, which stops the parts in order.
        self.process = subprocess.Popen(
            self.command,
            env=env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """The exit code; SIGKILL when it has not exited within ``timeout``."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        self.wait(STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None


class Cluster:
    """Start with ``start()`` (or ``with Cluster(config) as cluster``); ``stop()`` stops every
    part and the PostgreSQL server."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.pg = PostgresServer(config.pg_dir, port=config.pg_port or None, durable=config.durable)
        self.web_port = config.web_port or free_port()
        self.sandbox_port = config.sandbox_port or free_port()
        self.log_dir = config.log_dir or config.directory / "cluster-logs"
        self.key_file = config.key_file or config.directory / "cluster.key"
        self.db_url = ""
        self.sandbox: Part | None = None
        self.web: Part | None = None
        self.workers: list[Part] = []
        self._env: dict[str, str] = {}
        self._code: Path | None = None

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://{HOST}:{self.sandbox_port}"

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> Cluster:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.config.sqlite is None:
                self.pg.start()
            self.db_url = self._database()
            self._env = self._environment()
            if self.config.snapshot:
                self._code = self._copy_code()
            self.sandbox = self._part("sandbox", self._sandbox_command())
            self.sandbox.start(self._env)
            self.web = self._part("web", self._web_command())
            self.web.start(self._env)
            deadline = time.monotonic() + UP_TIMEOUT
            _wait_until_up(f"{self.sandbox_url}/sandbox/api/portal", self.sandbox, deadline)
            # The web process applies the migrations: workers start on a ready schema.
            _wait_until_up(f"{self.web_url}/api/catalog", self.web, deadline)
            for number in range(1, self.config.workers + 1):
                worker = self._part(f"worker-{number}", self._worker_command())
                worker.start(self._env)
                self.workers.append(worker)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """The web process and the workers first (workers finish their running jobs), then
        the portal, then PostgreSQL."""
        parts = [p for p in (self.web, *self.workers) if p is not None]
        for part in parts:
            part.signal(signal.SIGTERM)
        for part in parts:
            part.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.config.sqlite is None:
            with contextlib.suppress(PostgresUnavailable):
                self.pg.stop()

    # --- faults --------------------------------------------------------------------------

    def kill_worker(self, index: int, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to worker ``index`` (from 0) and wait until it is gone; its exit code."""
        worker = self.workers[index]
        worker.signal(sig)
        return worker.wait(STOP_TIMEOUT)

    def restart_worker(self, index: int) -> None:
        """Start worker ``index`` again (stopping it first if it still runs)."""
        worker = self.workers[index]
        if worker.alive:
            worker.signal(signal.SIGTERM)
            worker.wait(STOP_TIMEOUT)
        worker.start(self._env)

    def kill_and_restart_web(self) -> None:
        """SIGKILL the web process, as a crash or the OOM killer would, and start it again."""
        assert self.web is not None
        self.web.signal(signal.SIGKILL)
        self.web.wait(STOP_TIMEOUT)
        self.web.start(self._env)
        _wait_until_up(f"{self.web_url}/api/catalog", self.web, time.monotonic() + UP_TIMEOUT)

    def restart_postgres(self) -> None:
        """PostgreSQL crashes (``pg_ctl stop -m immediate``: no checkpoint, WAL replayed) and
        comes back on the same port and data."""
        if self.config.sqlite is not None:
            raise RuntimeError("a cluster on SQLite has no PostgreSQL to restart")
        self.pg.restart(mode="immediate")

    def revive(self) -> list[str]:
        """Start again the web process or workers that have exited; what was done."""
        done = []
        for part in [p for p in (self.web, *self.workers) if p is not None]:
            if not part.alive:
                done.append(f"{part.name} exited with {part.wait(0)}; started it again")
                part.start(self._env)
        return done

    # --- helpers -------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """Where each part is, for a person."""
        rows = [
            ("SQLite", self.db_url)
            if self.config.sqlite is not None
            else ("PostgreSQL", f"{self.db_url}  (data {self.pg.directory}, log {self.pg.log})")
        ]
        if self.sandbox is not None:
            rows.append(("Sandbox portal", f"{self.sandbox_url}/sandbox/  pid {self.sandbox.pid}"))
        if self.web is not None:
            rows.append(("Web process", f"{self.web_url}/  pid {self.web.pid}  (--worker none)"))
        for worker in self.workers:
            rows.append((worker.name.capitalize().replace("-", " "), f"pid {worker.pid}"))
        if self._code is not None:
            rows.append(("Code", f"{self._code} (a copy taken at start)"))
        rows.append(("Host key", f"{self.key_file} (${ENV})"))
        rows.append(("Logs", f"{self.log_dir}/"))
        return [f"{label:<16} {value}" for label, value in rows]

    def _database(self) -> str:
        """The cluster's database, made on first use and kept with the server's data."""
        if self.config.sqlite is not None:
            self.config.sqlite.parent.mkdir(parents=True, exist_ok=True)
            return str(self.config.sqlite)
        with psycopg.connect(self.pg.url("postgres"), autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.config.database,)
            ).fetchone()
        if found is None:
            return self.pg.create_database(self.config.database)
        return self.pg.url(self.config.database)

    def _environment(self) -> dict[str, str]:
        # The key is made once, owner-only, and goes to the processes through the environment,
        # never their command lines (--demo is refused with PostgreSQL).
        key, _ = demo_key(self.key_file)
        return {
            **os.environ,
            ENV: key.get_secret_value(),
            "B24_OAUTH_SERVERS": self.sandbox_url,
            "PYTHONUNBUFFERED": "1",
        }

    def _part(self, name: str, command: list[str]) -> Part:
        return Part(name, command, (self.log_dir / f"{name}.log").absolute(), cwd=self._code)

    def _copy_code(self) -> Path:
        """The packages as they are now; ``python -m`` from there imports them before the
        editable install's (its finder comes after the path's)."""
        code = (self.config.directory / "code").absolute()
        shutil.rmtree(code, ignore_errors=True)
        for package in PACKAGES:
            shutil.copytree(
                ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        self._env["PYTHONPATH"] = str(code)
        return code

    def _sandbox_command(self) -> list[str]:
        command = [sys.executable, "-m", "tests.cluster", "sandbox", "--port"]
        command += [str(self.sandbox_port), "--redirect-uri", f"{self.web_url}/oauth2/callback"]
        if not self.config.offline_events:
            command.append("--no-offline-events")
        if not self.config.seed_crm:
            command.append("--no-seed-crm")
        return command

    def _web_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "hooks.host", "--db", self.db_url, "--worker", "none"),
            *("--host", HOST, "--port", str(self.web_port), "--public-url", self.web_url),
        ]

    def _worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "hooks.host", "worker", "--db", self.db_url),
            *("--public-url", self.web_url, "--concurrency", str(self.config.concurrency)),
            *("--schedule-seconds", str(self.config.schedule_seconds)),
        ]


def _wait_until_up(url: str, part: Part, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not part.alive:
            raise RuntimeError(f"{part.name} exited with {part.wait(0)}: see {part.log_path}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{part.name} did not answer {url} in {UP_TIMEOUT:.0f} s")


def serve_sandbox(argv: list[str]) -> None:
    """The sandbox with the settings its own CLI does not expose (the soak's plan and CRM)."""
    import uvicorn

    from b24_openlines_plugin.sandbox import SandboxConfig, create_sandbox_app

    parser = argparse.ArgumentParser(prog="python -m tests.cluster sandbox")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redirect-uri", default="")
    parser.add_argument("--no-offline-events", dest="offline_events", action="store_false")
    parser.add_argument("--no-seed-crm", dest="seed_crm", action="store_false")
    args = parser.parse_args(argv)
    config = SandboxConfig(
        public_url=f"http://{HOST}:{args.port}",
        redirect_uri=args.redirect_uri,
        offline_events=args.offline_events,
        seed_crm=args.seed_crm,
    )
    uvicorn.run(create_sandbox_app(config), host=HOST, port=args.port, log_level="warning")


def _supervise(cluster: Cluster) -> None:
    """Until Ctrl+C (or SIGTERM): a part that exits by itself is started again, and said so."""
    while True:
        time.sleep(1.0)
        for line in cluster.revive():
            print(line, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the cluster as Ctrl+C does


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        serve_sandbox(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("var"), help="state (default var)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--web-port", type=int, default=8000)
    parser.add_argument("--sandbox-port", type=int, default=8100)
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--schedule-seconds", type=float, default=60.0)
    parser.add_argument("--sqlite", type=Path, help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args(argv)
    # Both explicitly: a shell starting us in the background may have left SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    cluster = Cluster(
        ClusterConfig(
            directory=args.dir,
            pg_dir=args.dir / "pg",
            pg_port=args.pg_port,
            web_port=args.web_port,
            sandbox_port=args.sandbox_port,
            workers=args.workers,
            schedule_seconds=args.schedule_seconds,
            sqlite=args.sqlite,
        )
    )
    print("Starting the database, the sandbox portal, the web process and the workers…", flush=True)
    try:
        cluster.start()
        print("\n".join(cluster.lines()), flush=True)
        print(
            f"Try it: {cluster.web_url}/ → add an integration (the sandbox's local application:"
            f" {cluster.sandbox_url}/sandbox/app); appeals at {cluster.web_url}/raw/appeals."
            " Ctrl+C stops everything.",
            flush=True,
        )
        _supervise(cluster)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    except (PostgresUnavailable, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    print("Stopped: the web process, the workers, the sandbox portal and the database.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
