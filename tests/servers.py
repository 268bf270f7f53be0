"""The host and the sandbox portal as real server processes on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (the host's worker process)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _wait_until_up(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@dataclass
class Servers:
    host_url: str
    portal_url: str
    client: httpx.Client
    kill_and_restart_host: Callable[[], None]
    host_pid: Callable[[], int]

    def integration(self, **settings: Any) -> dict[str, Any]:
        """An integration configured the way a client does it, its outgoing webhook set."""
        app = self.client.get(f"{self.portal_url}/sandbox/api/app").json()
        integration: dict[str, Any] = self.client.post(
            f"{self.host_url}/api/integrations", json={"plugin": "b24_openlines", "name": "Shop"}
        ).json()
        hook = self.client.post(
            f"{self.portal_url}/sandbox/api/outgoing-webhooks",
            json={"handler": integration["webhook_url"], "event": "ONCRMLEADADD"},
        ).json()
        body = {
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "portal": self.portal_url,
            "active": True,
            "employee_id": 1,
            "source_id": 6,
            "site_id": 1,
            "application_token": hook["application_token"],
            **settings,
        }
        saved = self.client.put(
            f"{self.host_url}/api/integrations/{integration['id']}/settings", json=body
        )
        assert saved.status_code == 200, saved.text
        result: dict[str, Any] = saved.json()
        return result

    def connect(self, integration_id: int) -> None:
        """Connect Bitrix24 → consent → Allow → callback, as a browser would (no JavaScript)."""
        authorize = self.client.get(
            f"{self.host_url}/integrations/{integration_id}/connect"
        ).headers["location"]
        assert self.client.get(authorize).status_code == 200
        allowed = self.client.post(
            f"{self.portal_url}/oauth/authorize/",
            data={**dict(parse_qsl(urlsplit(authorize).query)), "user_id": "1"},
        )
        back = self.client.get(allowed.headers["location"])
        assert back.status_code == 303 and back.headers["location"].endswith("connected=1"), (
            back.text
        )

    def appeals(self, *, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The appeals, once there are ``count`` of them (the portal delivers in the background)."""
        deadline = time.monotonic() + timeout
        appeals: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            appeals = self.client.get(f"{self.host_url}/api/appeals?limit=500").json()["appeals"]
            if len(appeals) >= count:
                return appeals
            time.sleep(0.1)
        raise AssertionError(f"{len(appeals)} appeals after {timeout} s, expected {count}")


def _start_host(
    db: Path | str, host_url: str, quiet: dict[str, Any], args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    port = host_url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "hooks.host", "--db", str(db), "--port", port, *args]
    if "ANALYTICS_HOST_KEY" not in quiet["env"]:
        command.append("--demo")  # the key beside the database, as ``make run`` keeps it
    return subprocess.Popen(command, **quiet)


@contextlib.contextmanager
def running_servers(
    db: Path | str,
    *,
    host_key: str | None = None,
    host_args: Sequence[str] = (),
    host_log: Path | None = None,
) -> Iterator[Servers]:
    """The host on ``db`` (a SQLite file, with its demo key; or a URL, with ``host_key``) and
    the sandbox, as real processes; ``host_args`` go to ``python -m hooks.host``; ``host_log``
    gets what the host (and its local worker) write to stderr."""
    host_url, portal_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "B24_OAUTH_SERVERS": portal_url}
    env.pop("ANALYTICS_HOST_KEY", None)
    if host_key is not None:
        env["ANALYTICS_HOST_KEY"] = host_key
    quiet: dict[str, Any] = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "b24_openlines_plugin.sandbox",
            "--port",
            portal_url.rsplit(":", 1)[1],
            "--redirect-uri",
            f"{host_url}/oauth2/callback",
        ],
        **quiet,
    )
    logs = contextlib.ExitStack()
    host_output = quiet
    if host_log is not None:
        host_output = {**quiet, "stderr": logs.enter_context(host_log.open("ab"))}
    host = _start_host(db, host_url, host_output, host_args)
    try:
        deadline = time.monotonic() + 30
        _wait_until_up(f"{portal_url}/sandbox/api/portal", sandbox, deadline)
        _wait_until_up(f"{host_url}/api/catalog", host, deadline)

        def kill_and_restart_host() -> None:
            """SIGKILL, as a crash or the OOM killer would, then start it again."""
            nonlocal host
            host.kill()
            host.wait(timeout=10)
            host = _start_host(db, host_url, host_output, host_args)
            _wait_until_up(f"{host_url}/api/catalog", host, time.monotonic() + 30)

        with httpx.Client(timeout=10.0) as client:
            yield Servers(host_url, portal_url, client, kill_and_restart_host, lambda: host.pid)
    finally:
        for process in (host, sandbox):
            process.terminate()
        for process in (host, sandbox):
            process.wait(timeout=10)
        logs.close()
