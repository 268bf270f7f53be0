"""The host's scheduler runs each integration's periodic work through the same job as its drain."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import pytest
from starlette.applications import Starlette

from hooks import hookimpl
from hooks.host.app import create_app
from hooks.host.plugins import get_plugin_manager
from hooks.host.state import HostConfig
from hooks.models import Integration, ScheduleOutcome

pytestmark = pytest.mark.anyio


class Periodic:
    """A plugin whose periodic work records when it runs and whether it overlaps itself."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.running: set[int] = set()
        self.overlapped = False

    @hookimpl
    def on_schedule(self, integration: Integration) -> object:
        if integration.plugin != "periodic":
            return None
        return self._run(integration)

    async def _run(self, integration: Integration) -> ScheduleOutcome:
        self.overlapped |= integration.id in self.running  # one integration, two runs at once
        self.running.add(integration.id)
        await asyncio.sleep(0.02)
        self.runs.append(integration.id)
        self.running.discard(integration.id)
        return ScheduleOutcome(note="ok")


async def test_periodic_work_runs_for_each_integration_and_never_overlaps(
    host_config: HostConfig,
) -> None:
    plugin = Periodic()
    app = create_app(
        replace(host_config, schedule_seconds=0.05),
        plugins=get_plugin_manager(extra={"periodic": plugin}),
    )
    async with app.router.lifespan_context(app):
        repo = app.state.host.repo
        first = await repo.create_integration("periodic", "a")
        second = await repo.create_integration("periodic", "b")
        await repo.create_integration(
            "b24_openlines", "not configured"
        )  # its plugin has no work yet
        for _ in range(200):
            if plugin.runs.count(first.id) >= 2 and plugin.runs.count(second.id) >= 2:
                break
            await asyncio.sleep(0.02)
    assert plugin.runs.count(first.id) >= 2 and plugin.runs.count(second.id) >= 2
    assert not plugin.overlapped


async def test_no_periodic_work_when_the_interval_is_zero(host_config: HostConfig) -> None:
    plugin = Periodic()
    app = create_app(
        replace(host_config, schedule_seconds=0),
        plugins=get_plugin_manager(extra={"periodic": plugin}),
    )
    async with app.router.lifespan_context(app):
        await app.state.host.repo.create_integration("periodic", "a")
        await app.state.host.queue.enqueue("drain", "1")
        await app.state.host.queue.idle()
    assert plugin.runs == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_three_workers_run_the_periodic_work_once_per_period(
    host_config: HostConfig, backend: str, request: pytest.FixtureRequest
) -> None:
    """Every worker that starts asks for the scheduler's tick at once; workers start and stop
    all through the run, and still each period's work runs once."""
    db = host_config.db if backend == "sqlite" else request.getfixturevalue("postgres_url")
    plugin = Periodic()
    config = replace(host_config, db=db, schedule_seconds=1.0)

    def app() -> Starlette:
        return create_app(config, plugins=get_plugin_manager(extra={"periodic": plugin}))

    async with contextlib.AsyncExitStack() as running:
        first = app()
        await running.enter_async_context(first.router.lifespan_context(first))
        integration = await first.state.host.repo.create_integration("periodic", "a")
        started = time.monotonic()
        for _ in range(2):  # two more workers, started one by one within the periods
            await asyncio.sleep(0.4)
            worker = app()
            await running.enter_async_context(worker.router.lifespan_context(worker))
        for _ in range(3):  # and one that comes and goes
            await asyncio.sleep(0.4)
            brief = app()
            async with brief.router.lifespan_context(brief):
                await asyncio.sleep(0.2)
        await asyncio.sleep(4.5 - (time.monotonic() - started))
        elapsed = time.monotonic() - started
    runs = plugin.runs.count(integration.id)
    # A run per period (a tenth of slack each) and the one due at the start; each worker's own
    # ask would add one run per start.
    assert 3 <= runs <= elapsed / (0.9 * config.schedule_seconds) + 1, plugin.runs
    assert not plugin.overlapped
