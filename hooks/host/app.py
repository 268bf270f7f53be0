"""The reference host as a Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hooks.errors import HookError, RetryLater
from hooks.host import api, pages, probes
from hooks.host.catalog import DEMO_CATALOG, load_catalog_file
from hooks.host.csrf import CsrfMiddleware
from hooks.host.database import open_repository
from hooks.host.headers import SECURITY_HEADERS, SecurityHeadersMiddleware
from hooks.host.inbox import LOCKED_JOBS, receive_webhook
from hooks.host.jobs import open_job_queue
from hooks.host.plugins import PluginHost, get_plugin_manager
from hooks.host.ratelimit import RateLimited, retry_after_header
from hooks.host.redact import install_log_redaction
from hooks.host.state import Host, HostConfig
from hooks.host.worker import LocalWorker, serve_jobs

log = logging.getLogger("hooks.host")
HERE = Path(__file__).parent
JSON_PREFIXES = ("/api/", "/webhooks/")


async def tracker_js(request: Request) -> Response:
    return FileResponse(HERE / "static" / "tracker.js", media_type="application/javascript")


async def handle_hook_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HookError)
    if request.url.path.startswith(JSON_PREFIXES):
        retry_after = exc.retry_after if isinstance(exc, RateLimited | RetryLater) else None
        headers = None if retry_after is None else {"retry-after": retry_after_header(retry_after)}
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)
    return pages.error_page(request, exc)


async def handle_crash(request: Request, exc: Exception) -> Response:
    """A bug's 500, sent outside every middleware: with the security headers all the same, and
    ``Connection: close``, as the server drops the connection after it (a client that had sent
    its next request on it would see a reset instead of an answer)."""
    return PlainTextResponse(
        "Internal Server Error",
        status_code=500,
        headers={**dict(SECURITY_HEADERS), "connection": "close"},
    )


def create_app(config: HostConfig, *, plugins: PluginHost | None = None) -> Starlette:
    """The host; ``plugins`` defaults to those installed under the ``analytics_host`` group."""
    install_log_redaction()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        repo = await open_repository(config.db, key=config.host_key)
        if config.catalog_path is not None:
            await repo.replace_catalog(load_catalog_file(config.catalog_path))
        elif config.seed_demo_catalog and not (await repo.get_catalog()).employees:
            await repo.replace_catalog(DEMO_CATALOG)
        queue = await open_job_queue(config.db, locked=LOCKED_JOBS)
        local_worker = LocalWorker(config) if config.worker == "process" else None
        stop_jobs = asyncio.Event()
        async with httpx.AsyncClient(transport=config.http_transport, timeout=30.0) as http:
            host = Host(config, repo, plugins or get_plugin_manager(), queue, http)
            for failure in host.plugins.failures:
                log.error("plugin %s is not available: %s", failure.name, failure.error)
            app.state.host = host
            inline = (
                asyncio.create_task(serve_jobs(host, stop_jobs), name="inline worker")
                if config.worker == "inline"
                else None
            )
            if local_worker is not None:
                await local_worker.start()
            try:
                yield
            finally:
                stop_jobs.set()
                if inline is not None:
                    await inline
                if local_worker is not None:
                    await local_worker.stop()
                await queue.close()
                await repo.close()

    routes = [
        Route("/", pages.dashboard),
        Route("/integrations", pages.create_integration_form, methods=["POST"]),
        Route(
            "/integrations/{integration_id}/settings", pages.settings_page, methods=["GET", "POST"]
        ),
        Route("/integrations/{integration_id}/connect", pages.connect),
        Route("/integrations/{integration_id}/check", pages.connection_action, methods=["POST"]),
        Route(
            "/integrations/{integration_id}/disconnect", pages.connection_action, methods=["POST"]
        ),
        Route("/integrations/{integration_id}/rename", pages.rename_form, methods=["POST"]),
        Route("/integrations/{integration_id}/delete", pages.delete_page, methods=["GET", "POST"]),
        Route("/oauth2/callback", pages.oauth_callback),
        Route("/raw/appeals", pages.appeals_page),
        Route("/raw/appeals.csv", pages.appeals_csv),
        Route("/inbox", pages.inbox_page),
        Route("/inbox/{item_id}/retry", pages.inbox_retry, methods=["POST"]),
        Route("/webhooks/{integration_id}/{token}", receive_webhook, methods=["POST"]),
        Route("/api/integrations", api.create_integration, methods=["POST"]),
        Route("/api/integrations", api.list_integrations, methods=["GET"]),
        Route("/api/integrations/{integration_id}", api.get_integration),
        Route("/api/integrations/{integration_id}", api.patch_integration, methods=["PATCH"]),
        Route("/api/integrations/{integration_id}", api.delete_integration, methods=["DELETE"]),
        Route("/api/integrations/{integration_id}/settings", api.put_settings, methods=["PUT"]),
        Route("/api/integrations/{integration_id}/settings", api.patch_settings, methods=["PATCH"]),
        Route("/api/sessions/{integration_id}", api.report_session, methods=["POST", "OPTIONS"]),
        Route(
            "/api/messenger-codes/{integration_id}",
            api.messenger_code,
            methods=["POST", "OPTIONS"],
        ),
        Route("/api/catalog", api.get_catalog),
        Route("/api/appeals", api.list_appeals),
        Route("/api/visits", api.add_visit, methods=["POST", "OPTIONS"]),
        Route("/tracker.js", tracker_js),
        Route("/healthz", probes.healthz),
        Route("/readyz", probes.readyz),
        Route("/metrics", probes.metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    csrf = Middleware(
        CsrfMiddleware,
        refuse=handle_hook_error,
        max_body=pages.FORM_MAX_BYTES,
        secure=config.public_url.startswith("https://"),
    )
    app = Starlette(
        routes=routes,
        # Outermost first: the CSRF check's refusals carry the security headers too.
        middleware=[Middleware(SecurityHeadersMiddleware), csrf],
        lifespan=lifespan,
        exception_handlers={HookError: handle_hook_error, Exception: handle_crash},
    )
    app.state.templates = pages.make_templates(str(HERE / "templates"))  # by language
    return app
