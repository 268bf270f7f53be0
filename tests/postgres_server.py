"""A throwaway PostgreSQL server in a directory of its own, for tests and demos.

``initdb`` and ``postgres`` refuse to run as root, so as root both run as the ``postgres`` user
(which Debian's package creates). The server listens on 127.0.0.1 only, with its socket inside
the directory and trust authentication: it is for this machine's tests, never for data that
matters. When the machine has no server binaries, Debian's ``postgresql`` package is installed
first. Anything that stops the server from starting raises ``PostgresUnavailable`` with the
reason: a test that needs PostgreSQL never silently skips.

    python -m tests.postgres_server start --dir var/pg --port 55432   # prints the URL
    python -m tests.postgres_server stop --dir var/pg
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
OWNER = "postgres"
HOST = "127.0.0.1"
DEFAULT_CLI_PORT = 55432
START_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be had: the message says why."""


def server_bin(*, install: bool = True) -> Path:
    """The newest installed server's ``bin`` directory; Debian's package is installed first
    when there is none (and ``install`` allows it)."""
    found = _installed_bins()
    if not found and install:
        install_postgres()
        found = _installed_bins()
    if not found:
        raise PostgresUnavailable(
            f"no PostgreSQL server binaries under {PG_ROOT}/*/bin (initdb): install Debian's"
            " postgresql package"
        )
    return found[-1]


def _installed_bins() -> list[Path]:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return sorted((path.parent for path in PG_ROOT.glob("*/bin/initdb")), key=version)


def install_postgres() -> None:
    """``apt-get install postgresql`` (after ``apt-get update``), non-interactively."""
    if os.geteuid() != 0:
        raise PostgresUnavailable(
            "PostgreSQL server binaries are missing and only root can install them:"
            " run apt-get install postgresql as root"
        )
    if shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries are missing and there is no apt-get to install them"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"installing PostgreSQL failed: {shlex.join(command)} exited with"
                f" {done.returncode}:\n{_tail(done.stdout + done.stderr)}"
            )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One cluster in ``directory`` (a fresh temporary one, removed by ``stop``, when None).

    ``durable=False`` (tests) turns ``fsync`` off: nothing is safe from a power cut, but a
    crash of the server itself (``restart(mode="immediate")``) loses nothing committed, since
    every commit is still written to the WAL (in the system's cache) before it returns.
    """

    def __init__(
        self, directory: str | Path | None = None, *, port: int | None = None, durable: bool = False
    ) -> None:
        self._temporary = directory is None
        self.directory = Path(
            tempfile.mkdtemp(prefix="pg-") if directory is None else directory
        ).absolute()
        self.port = port
        self.durable = durable
        self._bin: Path | None = None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "log"

    def url(self, dbname: str = "postgres") -> str:
        if self.port is None:
            raise PostgresUnavailable("the server has not been started: no port yet")
        return f"postgresql://{OWNER}@{HOST}:{self.port}/{dbname}"

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Make the cluster if the directory has none, and start it (unless it already runs,
        then only learn its port). Returns once it accepts connections."""
        self._bin = server_bin()
        self._prepare_directory()
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        running = self._running_port()
        if running is not None:
            self.port = running
            return self
        fixed = self.port is not None
        for attempt in range(1 if fixed else START_ATTEMPTS):
            if not fixed:
                self.port = free_port()
            done = self._pg_ctl(
                "-w", "-t", "60", "-l", str(self.log), "-o", self._options(), "start"
            )
            if done.returncode == 0:
                return self
            if attempt + 1 < START_ATTEMPTS and "could not bind" in self._log_tail():
                continue  # another process took the free port in between: take another one
            break
        raise PostgresUnavailable(
            f"PostgreSQL did not start in {self.directory} on port {self.port}:\n"
            f"{_tail(done.stdout + done.stderr)}\n{self._log_tail()}"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (if it runs); a temporary directory is removed with it."""
        self._shutdown(mode)
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self, mode: str = "immediate") -> None:
        """Stop (by default as a crash would: ``immediate`` skips the checkpoint, so the next
        start replays the WAL) and start again on the same port and data."""
        self._shutdown(mode)
        self.start()

    def _shutdown(self, mode: str) -> None:
        if self._bin is None:
            installed = _installed_bins()
            if not installed:
                return  # no server binaries: nothing can be running
            self._bin = installed[-1]
        if self._running_port() is None:
            return
        done = self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"PostgreSQL in {self.directory} did not stop:\n{_tail(done.stdout + done.stderr)}"
            )

    # --- databases -----------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            # FILE_COPY: copying the tiny template is quicker than WAL-logging it block by block.
            conn.execute(
                sql.SQL("CREATE DATABASE {} STRATEGY = FILE_COPY").format(sql.Identifier(name))
            )
        return self.url(name)

    # --- helpers -------------------------------------------------------------------------

    def _options(self) -> str:
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(self.directory),
            "max_connections": "200",
        }
        if not self.durable:
            # Not ``synchronous_commit=off``: that loses the last commits in a crash of the
            # server, and the crash tests restart it with ``mode="immediate"``.
            settings |= {"fsync": "off", "full_page_writes": "off"}
        return " ".join(f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items())

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(OWNER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root needs the {OWNER!r} user to run PostgreSQL as (Debian's"
                    " postgresql-common package makes it)"
                ) from None
            shutil.chown(self.directory, OWNER, OWNER)
        self.directory.chmod(0o700)

    def _initdb(self) -> None:
        assert self._bin is not None
        command = [
            str(self._bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            OWNER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
        if not self.durable:
            command.append("--no-sync")
        done = self._run(command)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"initdb failed in {self.directory}:\n{_tail(done.stdout + done.stderr)}"
            )

    def _running_port(self) -> int | None:
        """The port of the server running on this directory's data, if one runs."""
        assert self._bin is not None
        if not (self.data / "postmaster.pid").exists():
            return None
        if self._pg_ctl("status").returncode != 0:
            return None
        lines = (self.data / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].isdigit() else self.port

    def _pg_ctl(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        assert self._bin is not None
        return self._run([str(self._bin / "pg_ctl"), "-D", str(self.data), *arguments])

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            command = ["runuser", "-u", OWNER, "--", *command]
        # A cwd the postgres user can enter: pg_ctl and initdb complain about one they cannot.
        return subprocess.run(
            command, cwd=self.directory, capture_output=True, text=True, check=False
        )

    def _log_tail(self) -> str:
        try:
            return _tail(self.log.read_text(errors="replace"))
        except OSError:
            return ""


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.postgres_server",
        description="A throwaway PostgreSQL server (trust auth, 127.0.0.1) for tests and demos.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start it in the background and print its URL")
    start.add_argument("--dir", required=True, type=Path, help="its directory, e.g. var/pg")
    start.add_argument("--port", type=int, default=DEFAULT_CLI_PORT)
    stop = commands.add_parser("stop", help="stop the server of a directory")
    stop.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    server = PostgresServer(args.dir, port=getattr(args, "port", None), durable=True)
    try:
        if args.command == "start":
            server.start()
            print(server.url(), flush=True)
        else:
            server.stop()
    except PostgresUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
