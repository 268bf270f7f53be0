"""The sandbox as one Starlette application: portal REST, OAuth, pages, test API, demo site."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from b24_openlines_plugin.sandbox import api, messenger, oauth_http, pages, site
from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.rest import rest_endpoint
from b24_openlines_plugin.sandbox.state import Sandbox

GET, POST, PUT, DELETE = "GET", "POST", "PUT", "DELETE"


def create_sandbox_app(config: SandboxConfig | None = None) -> Starlette:
    """``app.state.sandbox`` exists at once; event delivery runs only inside the lifespan."""
    sandbox = Sandbox(config or SandboxConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        transport = sandbox.config.http_transport
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as http:
            sandbox.sender.start(http)
            try:
                yield
            finally:
                await sandbox.sender.stop()

    routes = [
        Route("/", pages.home),
        Route("/rest/{method}", rest_endpoint, methods=[GET, POST]),
        Route("/oauth/authorize/", oauth_http.authorize, methods=[GET, POST]),
        Route("/oauth/authorize", oauth_http.authorize, methods=[GET, POST]),
        Route("/oauth/token/", oauth_http.token, methods=[GET, POST]),
        Route("/oauth/token", oauth_http.token, methods=[GET, POST]),
        Route("/sandbox/", pages.index),
        Route("/sandbox/chats", pages.start_chat, methods=[POST]),
        Route("/sandbox/chats/{chat_id:int}/messages", pages.chat_message, methods=[POST]),
        Route("/sandbox/chats/{chat_id:int}/close", pages.chat_close, methods=[POST]),
        Route("/sandbox/chats/{chat_id:int}/sessions", pages.chat_session, methods=[POST]),
        Route("/sandbox/app", pages.app_page, methods=[GET, POST]),
        Route("/sandbox/webhooks", pages.webhooks_page, methods=[GET, POST]),
        Route("/sandbox/webhooks/{webhook_id:int}/delete", pages.webhook_delete, methods=[POST]),
        Route("/sandbox/deliveries", pages.deliveries_page),
        Route("/sandbox/site/settings", site.settings_page, methods=[GET, POST]),
        Route("/sandbox/widget.js", site.widget_js),
        Route("/sandbox/messenger.js", messenger.messenger_js),
        Route("/sandbox/messenger", messenger.messenger_page, methods=[GET, POST]),
        Route("/sandbox/messenger/chats/{chat_id:int}", messenger.messenger_chat),
        Route("/site/", site.demo_page),
        Route("/site/{page}", site.demo_page),
        Route("/sandbox/api/portal", api.portal),
        Route("/sandbox/api/app", api.app, methods=[GET, PUT]),
        Route("/sandbox/api/lines", api.lines, methods=[GET, POST]),
        Route("/sandbox/api/outgoing-webhooks", api.outgoing_webhooks, methods=[GET, POST]),
        Route(
            "/sandbox/api/outgoing-webhooks/{webhook_id:int}",
            api.outgoing_webhook_delete,
            methods=[DELETE],
        ),
        Route("/sandbox/api/event-handlers", api.event_handlers),
        Route("/sandbox/api/deliveries", api.deliveries),
        Route("/sandbox/api/offline-events", api.offline_events),
        Route("/sandbox/api/chats", api.chats, methods=[GET, POST]),
        Route("/sandbox/api/dialogs", api.dialogs),
        Route("/sandbox/api/chats/bulk", api.chats_bulk, methods=[POST]),
        Route("/sandbox/api/chats/{chat_id:int}", api.chat),
        Route("/sandbox/api/chats/{chat_id:int}/messages", api.chat_messages, methods=[POST]),
        Route("/sandbox/api/chats/{chat_id:int}/close", api.chat_close, methods=[POST]),
        Route("/sandbox/api/chats/{chat_id:int}/sessions", api.chat_sessions, methods=[POST]),
        Route("/sandbox/api/faults", api.faults, methods=[GET, POST, DELETE]),
        Route("/sandbox/api/site", site.site_api, methods=[GET, PUT]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app
