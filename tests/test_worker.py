"""The worker process: the host's jobs run in a process of their own, which the host watches."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hooks.host.inbox import DRAIN
from hooks.host.repository import InboxItem, Repository
from hooks.host.sqlite import open_repository
from hooks.host.state import HostConfig
from hooks.host.worker import WorkerProcessQueue
from hooks.models import HookRequest
from tests.conftest import HOST_KEY, PUBLIC_URL

pytestmark = pytest.mark.anyio
HANG = 30.0  # only guards against a hang


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[Repository]:
    opened = await open_repository(str(tmp_path / "host.sqlite3"), key=HOST_KEY)
    try:
        yield opened
    finally:
        await opened.close()


def _config(tmp_path: Path) -> HostConfig:
    return HostConfig(
        db=str(tmp_path / "host.sqlite3"),
        public_url=PUBLIC_URL,
        host_key=HOST_KEY,
        schedule_seconds=0,
        worker="process",
    )


async def _delivery(repo: Repository) -> InboxItem:
    """A pending delivery for an integration that has no settings yet (the plugin refuses it,
    which parks it as failed: enough to see that the worker processed it)."""
    integration = await repo.create_integration("b24_openlines", "Shop")
    request = HookRequest(
        method="POST",
        path=f"/webhooks/{integration.id}/",
        body=b"event=ONCRMLEADADD&data%5BFIELDS%5D%5BID%5D=7",
        received_at=datetime.now(UTC),
    )
    return await repo.add_inbox_item(integration.id, request)


async def _status(repo: Repository, item: InboxItem) -> str:
    for status in ("pending", "done", "ignored", "failed"):
        if any(found.id == item.id for found in await repo.list_inbox(status=status)):
            return status
    raise AssertionError("the item is gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_jobs_run_in_another_process_and_stop_ends_it(
    tmp_path: Path, repo: Repository
) -> None:
    item = await _delivery(repo)
    queue = WorkerProcessQueue(_config(tmp_path))
    # Asked for before the worker runs: kept, and handed over when it starts.
    await queue.enqueue(DRAIN, str(item.integration_id))
    await queue.start()
    pid = queue.pid
    assert pid is not None and pid != os.getpid() and _alive(pid)
    try:
        await asyncio.wait_for(queue.idle(), HANG)
        assert await _status(repo, item) == "failed"  # processed, by the worker
    finally:
        await queue.stop()
    assert not _alive(pid)


async def test_a_starting_worker_finds_the_waiting_work_itself(
    tmp_path: Path, repo: Repository
) -> None:
    item = await _delivery(repo)  # stored while no worker ran, and nobody asks for a drain
    queue = WorkerProcessQueue(_config(tmp_path))
    await queue.start()
    try:
        async with asyncio.timeout(HANG):
            while await _status(repo, item) == "pending":
                await asyncio.sleep(0.05)
        assert await _status(repo, item) == "failed"
    finally:
        await queue.stop()


async def test_a_worker_that_dies_is_replaced(tmp_path: Path, repo: Repository) -> None:
    queue = WorkerProcessQueue(_config(tmp_path))
    await queue.start()
    try:
        first = queue.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        async with asyncio.timeout(HANG):
            while queue.pid in (first, None):
                await asyncio.sleep(0.05)
        item = await _delivery(repo)
        await queue.enqueue(DRAIN, str(item.integration_id))
        await asyncio.wait_for(queue.idle(), HANG)
        assert await _status(repo, item) == "failed"
    finally:
        await queue.stop()


async def test_the_web_process_neither_registers_handlers_nor_takes_unknown_jobs(
    tmp_path: Path,
) -> None:
    queue = WorkerProcessQueue(_config(tmp_path))
    with pytest.raises(TypeError):
        queue.register(DRAIN, lambda key: asyncio.sleep(0))
    with pytest.raises(LookupError):
        await queue.enqueue("no-such-job", "1")
    await queue.stop()  # never started: nothing to stop, no error
