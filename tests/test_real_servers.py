"""``make run``'s arrangement for real: the host and the sandbox portal as two server processes on
loopback ports, a browser-like client going through connect → chat → appeal over real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    host_url, portal_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "B24_OAUTH_SERVERS": portal_url}
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
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hooks.host",
            "--db",
            str(tmp_path / "host.sqlite3"),
            "--port",
            host_url.rsplit(":", 1)[1],
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        wait_until_up(f"{portal_url}/sandbox/api/portal", sandbox, deadline)
        wait_until_up(f"{host_url}/api/catalog", host, deadline)
        yield host_url, portal_url
    finally:
        for process in (host, sandbox):
            process.terminate()
        for process in (host, sandbox):
            process.wait(timeout=10)


def test_a_sandbox_chat_reaches_raw_data_through_real_servers(servers: tuple[str, str]) -> None:
    host_url, portal_url = servers
    with httpx.Client(timeout=10.0) as browser:
        app = browser.get(f"{portal_url}/sandbox/api/app").json()
        integration = browser.post(
            f"{host_url}/api/integrations", json={"plugin": "b24_openlines", "name": "Real"}
        ).json()
        token = browser.post(
            f"{portal_url}/sandbox/api/outgoing-webhooks",
            json={"handler": integration["webhook_url"], "event": "ONCRMLEADADD"},
        ).json()["application_token"]
        saved = browser.put(
            f"{host_url}/api/integrations/{integration['id']}/settings",
            json={
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "portal": portal_url,
                "active": True,
                "employee_id": 1,
                "source_id": 6,
                "site_id": 1,
                "application_token": token,
            },
        )
        assert saved.status_code == 200, saved.text
        authorize = browser.get(f"{host_url}/integrations/{integration['id']}/connect").headers[
            "location"
        ]
        assert browser.get(authorize).status_code == 200  # the consent page
        allowed = browser.post(
            f"{portal_url}/oauth/authorize/",
            data={**dict(parse_qsl(urlsplit(authorize).query)), "user_id": "1"},
        )
        back = browser.get(allowed.headers["location"])
        assert back.status_code == 303 and back.headers["location"].endswith("connected=1")

        chat = browser.post(
            f"{portal_url}/sandbox/api/chats",
            json={
                "connector": "livechat",
                "visitor": {"name": "Real Visitor", "phone": "+79001112233"},
                "messages": [{"author": "visitor", "text": "Через настоящие сокеты"}],
            },
        )
        assert chat.status_code == 201, chat.text
        deadline = time.monotonic() + 20
        appeals: list[dict[str, object]] = []
        while time.monotonic() < deadline and not appeals:
            appeals = browser.get(f"{host_url}/api/appeals").json()["appeals"]
            time.sleep(0.1)
        assert len(appeals) == 1, "the appeal did not arrive"
        assert appeals[0]["contact"] == {
            "name": "Real Visitor",
            "phones": ["+79001112233"],
            "emails": [],
        }
        assert "Через настоящие сокеты" in str(appeals[0]["text"])
        page = browser.get(f"{host_url}/raw/appeals")
        assert "Real Visitor" in page.text
