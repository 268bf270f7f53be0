"""``/healthz``, ``/readyz`` and ``/metrics``: what an operator's probes and Prometheus ask.

``/healthz`` says the process answers (a liveness probe restarts it otherwise), nothing more: a
database that is away is no reason to restart the web process. ``/readyz`` says whether the host
can do its work: the database answers, and some worker, on any machine, has proved alive within
its stall window (else webhooks are stored but never processed); it answers ``503`` with the
reasons when not. Both read the database with a deadline, so a probe never hangs on it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hooks.host.metrics import CONTENT_TYPE, DatabaseFigures, exposition
from hooks.host.state import Host

log = logging.getLogger("hooks.host.probes")

DATABASE_DEADLINE_SECONDS = 5.0


async def database_figures(host: Host) -> DatabaseFigures:
    """The cluster-wide figures, read now; raises when the database does not answer in time."""
    async with asyncio.timeout(DATABASE_DEADLINE_SECONDS):
        queue = await host.queue.status()
        integrations = [integration.id for integration in await host.repo.list_integrations()]
        inbox = await host.repo.inbox_counts()
        appeals = await host.repo.appeal_counts()
    return DatabaseFigures(integrations, inbox, appeals, queue)


async def _figures_or_none(host: Host) -> DatabaseFigures | None:
    try:
        return await database_figures(host)
    except Exception as exc:  # unreachable, timed out, restarting: the answer says so
        log.warning("the database did not answer a health check: %s", type(exc).__name__)
        return None


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> JSONResponse:
    host: Host = request.app.state.host
    figures = await _figures_or_none(host)
    if figures is None:
        reasons = ["the database does not answer"]
        return JSONResponse({"ready": False, "reasons": reasons, "database": "unreachable"}, 503)
    queue = figures.queue
    seen = (
        None
        if queue.last_worker_seen is None
        else datetime.fromtimestamp(queue.last_worker_seen, UTC).isoformat(timespec="seconds")
    )
    reasons = []
    if queue.workers == 0:
        reasons.append(
            "no worker is running: webhooks are stored but not processed"
            + (f" (one was last seen at {seen})" if seen else "")
        )
    body = {
        "ready": not reasons,
        "reasons": reasons,
        "database": "ok",
        "workers": queue.workers,
        "last_worker_seen": seen,
        "queue": {"due": queue.due, "scheduled": queue.scheduled, "running": queue.running},
    }
    return JSONResponse(body, status_code=503 if reasons else 200)


async def metrics(request: Request) -> Response:
    host: Host = request.app.state.host
    figures = await _figures_or_none(host)
    return Response(exposition(host.metrics, figures), media_type=CONTENT_TYPE)
