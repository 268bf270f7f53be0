"""Where the bench runs the host and the sandbox: real server processes, or one process.

Both speak HTTP over loopback, so the peers' own HTTP clients (aiohttp, requests) reach the same
sandbox the plugin does. ``ServerProcesses`` is the measurement: the sandbox's rate limit and
the plugin's bucket run on wall time, and each process's CPU and memory are its own.
``InProcessServers`` runs the same apps under uvicorn on the caller's loop, for the smoke test:
the figures come out, but they mix the host's, the sandbox's and the bench's work.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from tests.bench.relay import Relay
from tests.bench.sandbox_server import COMMANDS_PATH, LOG_PATH, RestLog, logged_sandbox
from tests.servers import child_pids
from tests.uvicorn_server import serving

HOST_KEY_ENV = "ANALYTICS_HOST_KEY"
OAUTH_SERVERS_ENV = "B24_OAUTH_SERVERS"
ROOT = Path(__file__).resolve().parents[2]


class Endpoints(Protocol):
    host_url: str  # the host itself (pages, API, OAuth callback)
    webhook_base: str  # where the sandbox delivers events: the timing relay in front of the host
    portal_url: str


class System(Endpoints, Protocol):
    async def rest_log(self) -> list[tuple[float, str, int]]:
        """Every REST request the sandbox answered: wall time, method, HTTP status."""
        ...

    async def rest_commands(self) -> list[int]:
        """The commands each of those requests carried, in the same order."""
        ...

    def ack_latencies(self) -> list[float]:
        """Seconds from a delivery's first byte to the host's answer, one per delivery."""
        ...

    def host_cpu_seconds(self) -> float:
        """CPU time (user + system) the host has used so far."""
        ...

    def host_peak_rss_mb(self) -> float:
        """The host's peak resident memory so far."""
        ...

    def sandbox_cpu_seconds(self) -> float:
        """CPU time the sandbox has used so far (NaN when it shares the host's process)."""
        ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_host_key() -> str:
    """A Fernet key (32 url-safe base64 bytes) for a host that encrypts its secrets."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


async def fetch_rest_log(
    client: httpx.AsyncClient, portal_url: str
) -> list[tuple[float, str, int]]:
    answer = await client.get(portal_url + LOG_PATH)
    answer.raise_for_status()
    return [(float(t), str(m), int(s)) for t, m, s in answer.json()]


async def fetch_rest_commands(client: httpx.AsyncClient, portal_url: str) -> list[int]:
    answer = await client.get(portal_url + COMMANDS_PATH)
    answer.raise_for_status()
    return [int(n) for n in answer.json()]


async def wait_until_up(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url} exited with {process.returncode}")
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


def _proc_status(pid: int, field: str) -> float:
    """A ``kB`` field of ``/proc/<pid>/status`` (VmHWM: peak resident set), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def proc_cpu(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of ``/proc/<pid>/stat``, in seconds; ``reaped`` adds the CPU of the
    children it has waited for (cutime + cstime: PostgreSQL's finished backends)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    used = fields[11:15] if reaped else fields[11:13]  # fields 14-17 of the line
    return sum(int(ticks) for ticks in used) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class ServerProcesses:
    host_url: str
    webhook_base: str
    portal_url: str
    host_pid: int
    sandbox_pid: int
    relay_log: Path
    client: httpx.AsyncClient

    async def rest_log(self) -> list[tuple[float, str, int]]:
        return await fetch_rest_log(self.client, self.portal_url)

    async def rest_commands(self) -> list[int]:
        return await fetch_rest_commands(self.client, self.portal_url)

    def ack_latencies(self) -> list[float]:
        return read_latencies(self.relay_log)

    def host_cpu_seconds(self) -> float:
        return sum(proc_cpu(pid) for pid in self._host_pids())

    def host_peak_rss_mb(self) -> float:
        return sum(_proc_status(pid, "VmHWM") for pid in self._host_pids())

    def _host_pids(self) -> list[int]:
        """The host's web process and its worker process (``hooks.host.worker``)."""
        return [self.host_pid, *child_pids(self.host_pid)]

    def sandbox_cpu_seconds(self) -> float:
        return proc_cpu(self.sandbox_pid)


def bench_env(oauth_servers: list[str]) -> dict[str, str]:
    """The environment of the bench's processes: the sandbox portals allowed as OAuth servers,
    a fresh host key, and this checkout importable."""
    env = {**os.environ, OAUTH_SERVERS_ENV: ",".join(oauth_servers), HOST_KEY_ENV: new_host_key()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def relay_command(port: int, upstream: int, out: Path) -> list[str]:
    """The timing relay (``tests.bench.relay``) on ``port`` in front of ``upstream``."""
    return [
        sys.executable,
        *("-m", "tests.bench.relay", "--port", str(port)),
        *("--upstream", str(upstream), "--out", str(out)),
    ]


def read_latencies(out: Path) -> list[float]:
    """The relay's log so far: seconds, one per delivery."""
    return [float(line) for line in out.read_text(encoding="ascii").split()]


async def relay_up(out: Path) -> None:
    """The relay creates its log once it listens."""
    while not out.exists():
        await asyncio.sleep(0.05)


def _host_command(db: Path, port: int) -> list[str]:
    """``python -m hooks.host`` with periodic work off (see ``docs/benchmarks.md``)."""
    return [
        sys.executable,
        *("-m", "hooks.host", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)),
        *("--schedule-seconds", "0"),
    ]


@contextlib.asynccontextmanager
async def server_processes(workdir: Path, limit: str) -> AsyncIterator[ServerProcesses]:
    """The host, the sandbox and the timing relay as three processes on free loopback ports."""
    host_port, portal_port, relay_port = free_port(), free_port(), free_port()
    host_url = f"http://127.0.0.1:{host_port}"
    portal_url = f"http://127.0.0.1:{portal_port}"
    env = bench_env([portal_url])
    relay_log = workdir / "ack-latencies.txt"
    commands = {
        "sandbox": [
            sys.executable,
            *("-m", "tests.bench.sandbox_server", "--port", str(portal_port)),
            *("--rate-limit", limit, "--redirect-uri", f"{host_url}/oauth2/callback"),
        ],
        "host": _host_command(workdir / "host.sqlite3", host_port),
        "relay": relay_command(relay_port, host_port, relay_log),
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            with (workdir / f"{name}.log").open("wb") as out:
                processes[name] = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                )
        await wait_until_up(f"{portal_url}/sandbox/api/portal", processes["sandbox"], 30)
        await wait_until_up(f"{host_url}/api/catalog", processes["host"], 30)
        await relay_up(relay_log)
        async with httpx.AsyncClient(timeout=120.0) as client:
            yield ServerProcesses(
                host_url,
                f"http://127.0.0.1:{relay_port}",
                portal_url,
                processes["host"].pid,
                processes["sandbox"].pid,
                relay_log,
                client,
            )
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclasses.dataclass
class InProcessServers:
    host_url: str
    webhook_base: str
    portal_url: str
    relay: Relay
    sandbox: RestLog

    async def rest_log(self) -> list[tuple[float, str, int]]:
        return list(self.sandbox.entries)

    async def rest_commands(self) -> list[int]:
        return list(self.sandbox.commands)

    def ack_latencies(self) -> list[float]:
        return list(self.relay.latencies)

    def host_cpu_seconds(self) -> float:
        return time.process_time()

    def host_peak_rss_mb(self) -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def sandbox_cpu_seconds(self) -> float:
        return float("nan")


def served(app: Any, port: int) -> contextlib.AbstractAsyncContextManager[tuple[str, int]]:
    """``app`` on ``port``, quietly (the bench's figures are its output)."""
    return serving(app, port=port, log_level="warning", access_log=False)


@contextlib.asynccontextmanager
async def in_process_servers(workdir: Path, limit: str) -> AsyncIterator[InProcessServers]:
    """The same apps under uvicorn on this loop (OAuth server allowed via the environment)."""
    from hooks.host.app import create_app
    from hooks.host.state import HostConfig

    host_port, portal_port = free_port(), free_port()
    host_url = f"http://127.0.0.1:{host_port}"
    portal_url = f"http://127.0.0.1:{portal_port}"
    sandbox = logged_sandbox(portal_url, limit, f"{host_url}/oauth2/callback")
    options: dict[str, Any] = {"schedule_seconds": 0.0}
    if "host_key" in {f.name for f in dataclasses.fields(HostConfig)}:
        options["host_key"] = SecretStr(new_host_key())
    host = create_app(HostConfig(db=str(workdir / "host.sqlite3"), public_url=host_url, **options))
    relay = Relay(host_port)
    with oauth_server_allowed(portal_url):
        async with served(sandbox, portal_port), served(host, host_port):
            relay_port = await relay.start()
            try:
                yield InProcessServers(
                    host_url, f"http://127.0.0.1:{relay_port}", portal_url, relay, sandbox
                )
            finally:
                await relay.stop()


@contextlib.contextmanager
def oauth_server_allowed(portal_url: str) -> Iterator[None]:
    """The plugin trusts only Bitrix24's OAuth servers unless the environment adds one."""
    before = os.environ.get(OAUTH_SERVERS_ENV)
    os.environ[OAUTH_SERVERS_ENV] = portal_url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(OAUTH_SERVERS_ENV, None)
        else:
            os.environ[OAUTH_SERVERS_ENV] = before
