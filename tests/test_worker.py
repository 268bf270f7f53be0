"""Worker processes: the host's jobs run in processes that share nothing but the database; the
host's local worker is started again whenever it exits; a worker alone runs from the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hooks.host.database import open_repository
from hooks.host.host_key import ENV
from hooks.host.inbox import DRAIN, LOCKED_JOBS
from hooks.host.jobs import open_job_queue
from hooks.host.repository import InboxItem, Repository
from hooks.host.state import HostConfig
from hooks.host.worker import LocalWorker
from hooks.models import HookRequest
from tests.conftest import HOST_KEY, PUBLIC_URL

pytestmark = pytest.mark.anyio
HANG = 30.0  # only guards against a hang


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "host.sqlite3")


@pytest.fixture
async def repo(db: str) -> AsyncIterator[Repository]:
    opened = await open_repository(db, key=HOST_KEY)
    try:
        yield opened
    finally:
        await opened.close()


def _config(db: str) -> HostConfig:
    return HostConfig(
        db=db, public_url=PUBLIC_URL, host_key=HOST_KEY, schedule_seconds=0, worker="process"
    )


async def _delivery(repo: Repository) -> InboxItem:
    """A pending delivery for an integration that has no settings yet (the plugin refuses it,
    which parks it as failed: enough to see that a worker processed it)."""
    integration = await repo.create_integration("b24_openlines", "Shop")
    request = HookRequest(
        method="POST",
        path=f"/webhooks/{integration.id}/",
        body=b"event=ONCRMLEADADD&data%5BFIELDS%5D%5BID%5D=7",
        received_at=datetime.now(UTC),
    )
    return await repo.add_inbox_item(integration.id, request)


async def _processed(repo: Repository, item: InboxItem) -> None:
    for _ in range(int(HANG / 0.05)):
        if not any(found.id == item.id for found in await repo.list_inbox(status="pending")):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"inbox item {item.id} is still pending")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _ask_for_drain(db: str, item: InboxItem) -> None:
    """What the web process does after storing a webhook: ask for its drain, in the database."""
    queue = await open_job_queue(db, locked=LOCKED_JOBS)
    try:
        await queue.enqueue(DRAIN, str(item.integration_id))
    finally:
        await queue.close()


async def test_jobs_run_in_another_process_and_stop_ends_it(db: str, repo: Repository) -> None:
    worker = LocalWorker(_config(db))
    await worker.start()
    pid = worker.pid
    assert pid is not None and pid != os.getpid()
    try:
        item = await _delivery(repo)
        await _ask_for_drain(db, item)
        await _processed(repo, item)
    finally:
        await worker.stop()
    assert not _alive(pid)


async def test_a_starting_worker_finds_the_work_already_waiting(db: str, repo: Repository) -> None:
    """A delivery stored while no worker ran, its drain request lost: found all the same."""
    item = await _delivery(repo)
    worker = LocalWorker(_config(db))
    await worker.start()
    try:
        await _processed(repo, item)
    finally:
        await worker.stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
async def test_a_worker_that_exits_for_any_reason_is_started_again(
    db: str, repo: Repository, how: signal.Signals
) -> None:
    worker = LocalWorker(_config(db))
    await worker.start()
    try:
        first = worker.pid
        assert first is not None
        os.kill(first, how)
        for _ in range(int(HANG / 0.05)):
            if worker.pid not in (first, None):
                break
            await asyncio.sleep(0.05)
        assert worker.pid not in (first, None)
        item = await _delivery(repo)
        await _ask_for_drain(db, item)
        await _processed(repo, item)
    finally:
        await worker.stop()


async def test_a_worker_alone_from_the_command_line(db: str, repo: Repository) -> None:
    """``python -m hooks.host worker --db …``: its key from the environment, SIGTERM stops it."""
    item = await _delivery(repo)
    env = {**os.environ, ENV: HOST_KEY.get_secret_value()}
    process = subprocess.Popen(
        [sys.executable, "-m", "hooks.host", "worker", "--db", db, "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await _processed(repo, item)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=HANG)
    assert process.returncode == 0, err.decode()
    assert HOST_KEY.get_secret_value() not in err.decode()


def test_a_worker_without_the_key_says_so_and_stops(db: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    done = subprocess.run(
        [sys.executable, "-m", "hooks.host", "worker", "--db", db],
        env=env,
        capture_output=True,
        timeout=HANG,
    )
    assert done.returncode == 2
    assert ENV in done.stderr.decode()
