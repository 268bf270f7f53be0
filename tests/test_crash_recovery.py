"""``kill -9`` of the host while it works: nothing accepted is lost, nothing is doubled."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HOST_KEY
from tests.servers import Servers, child_pids, running_servers

CHATS = 30
BURST = 300


@pytest.fixture(params=["sqlite", "postgres"])
def servers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Servers]:
    if request.param == "sqlite":
        with running_servers(tmp_path / "host.sqlite3") as running:
            yield running
        return
    url = request.getfixturevalue("postgres_url")
    with running_servers(url, host_key=HOST_KEY.get_secret_value()) as running:
        yield running


def _pending_chats(servers: Servers, count: int) -> set[int]:
    """``count`` chats whose webhooks the host accepted while Bitrix24 keeps failing, so that
    they sit in the inbox mid-processing; their Open Lines sessions."""
    integration = servers.integration()
    servers.connect(integration["id"])
    portal = servers.portal_url
    failing = servers.client.post(
        f"{portal}/sandbox/api/faults", json={"rest_error_rate": 1.0, "seed": 1}
    )
    assert failing.status_code == 200, failing.text
    bulk = servers.client.post(
        f"{portal}/sandbox/api/chats/bulk",
        json={
            "count": count,
            "mix": ["livechat", "telegrambot"],
            "lines": [1],
            "close": False,
            "seed": 3,
        },
    )
    assert bulk.status_code == 201, bulk.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log = servers.client.get(f"{portal}/sandbox/api/deliveries").json()
        leads = [d for d in log if d["event"] == "ONCRMLEADADD"]
        if len(leads) >= count and all(
            d.get("status_code") is not None or d.get("error") for d in leads
        ):
            break
        time.sleep(0.1)
    acknowledged = [d for d in leads if d.get("status_code") == 200]
    assert len(acknowledged) >= count  # every event was answered 200: the host owes us these
    assert servers.client.get(f"{servers.host_url}/api/appeals").json()["appeals"] == []
    return {c["session_id"] for c in bulk.json()["chats"]}


def _every_chat_once(servers: Servers, chats: set[int], timeout: float) -> None:
    servers.client.delete(f"{servers.portal_url}/sandbox/api/faults")  # Bitrix24 is back
    appeals = servers.appeals(count=len(chats), timeout=timeout)
    keys = [a["key"] for a in appeals]
    assert len(keys) == len(chats) == len(set(keys))
    assert {int(k.rsplit(":", 1)[1]) for k in keys} == chats


def test_a_killed_worker_is_replaced_and_every_pending_webhook_is_done_once(
    servers: Servers,
) -> None:
    chats = _pending_chats(servers, BURST)
    [worker] = child_pids(servers.host_pid())
    os.kill(worker, signal.SIGKILL)  # busy: draining the burst against a failing portal
    deadline = time.monotonic() + 15
    while child_pids(servers.host_pid()) in ([], [worker]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child_pids(servers.host_pid()) not in ([], [worker])  # another worker took over
    _every_chat_once(servers, chats, timeout=120)


def test_a_worker_killed_mid_drain_loses_nothing_and_doubles_nothing(servers: Servers) -> None:
    """Killed while its drain has written some appeals and has others in flight or waiting for
    a retry: the written ones stay written, the rest are taken again, every chat once."""
    integration = servers.integration()
    servers.connect(integration["id"])
    portal = servers.portal_url
    flaky = servers.client.post(
        f"{portal}/sandbox/api/faults", json={"rest_error_rate": 0.3, "seed": 5}
    )
    assert flaky.status_code == 200, flaky.text
    bulk = servers.client.post(
        f"{portal}/sandbox/api/chats/bulk",
        json={"count": BURST, "mix": ["livechat", "telegrambot"], "lines": [1], "seed": 4},
    )
    assert bulk.status_code == 201, bulk.text
    chats = {c["session_id"] for c in bulk.json()["chats"]}
    written: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        written = servers.client.get(f"{servers.host_url}/api/appeals?limit=500").json()["appeals"]
        if written:
            break
        time.sleep(0.02)
    assert 0 < len(written) < len(chats)  # mid-drain: some written, the rest not yet
    [worker] = child_pids(servers.host_pid())
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while child_pids(servers.host_pid()) in ([], [worker]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child_pids(servers.host_pid()) not in ([], [worker])
    _every_chat_once(servers, chats, timeout=120)


def test_a_killed_host_finishes_every_accepted_webhook_once_after_restart(servers: Servers) -> None:
    chats = _pending_chats(servers, CHATS)

    workers = child_pids(servers.host_pid())
    assert len(workers) == 1  # the host runs its jobs in a worker process
    servers.kill_and_restart_host()
    # The killed host's worker notices and exits: no orphan keeps draining beside the new one.
    deadline = time.monotonic() + 15
    while _running(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(workers[0])
    _every_chat_once(servers, chats, timeout=60)


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped by init."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
