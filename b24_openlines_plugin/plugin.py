"""The hook implementations: thin, each routes to the module that does the work.

Every hook first checks that the integration is this plugin's, *before* creating any
coroutine: with ``firstresult`` a coroutine is never ``None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

from b24_openlines_plugin import (
    PLUGIN_NAME,
    appeals,
    catchup,
    connection,
    events,
    sessions,
)
from b24_openlines_plugin.context import Portal
from b24_openlines_plugin.settings import build_settings_view
from hooks import hookimpl
from hooks.errors import RetryLater
from hooks.models import (
    Catalog,
    HookRequest,
    HookResponse,
    Integration,
    OAuthOutcome,
    ScheduleOutcome,
    SettingsView,
    WebhookOutcome,
    WebhookVerdict,
)
from hooks.services import HostServices


def _ours(integration: Integration) -> bool:
    return integration.plugin == PLUGIN_NAME


@hookimpl
def on_settings_render(
    integration: Integration,
    catalog: Catalog,
    submitted: Mapping[str, Any] | None,
    host: HostServices,
) -> SettingsView | None:
    if not _ours(integration):
        return None
    return build_settings_view(integration, catalog, submitted, host)


@hookimpl
def on_oauth_callback(
    integration: Integration, query: Mapping[str, str], host: HostServices
) -> Awaitable[OAuthOutcome] | None:
    if not _ours(integration):
        return None
    return connection.connect(integration, query, host)


@hookimpl
def on_webhook_verify(
    integration: Integration, request: HookRequest, host: HostServices
) -> Awaitable[WebhookVerdict] | None:
    if not _ours(integration):
        return None
    return events.verify(integration, request, host)


@hookimpl
def on_webhook(
    integration: Integration, request: HookRequest, host: HostServices
) -> Awaitable[WebhookOutcome] | None:
    if not _ours(integration):
        return None
    return _process_webhook(integration, request, host)


async def _process_webhook(
    integration: Integration, request: HookRequest, host: HostServices
) -> WebhookOutcome:
    event = events.parse(request)
    portal = Portal.of(integration, host)
    if not portal.settings.active:
        return WebhookOutcome(result="ignored", reason="the integration is not active")
    if not portal.connection.connected:
        raise RetryLater("The portal is not connected yet: connect it in the settings")
    client = connection.rest_client(integration, host)
    appeal = await appeals.process_event(client, portal, event.name, event.entity_id)
    if appeal is None:
        return WebhookOutcome(
            result="ignored",
            reason=f"{event.name} {event.entity_id}: not handled, or no Open Lines chat behind it",
        )
    return WebhookOutcome(result="processed", appeal_keys=[appeal.key])


@hookimpl
def on_schedule(integration: Integration, host: HostServices) -> Awaitable[ScheduleOutcome] | None:
    if not _ours(integration):
        return None
    return catchup.run(integration, host)


@hookimpl
def on_session(
    integration: Integration, request: HookRequest, host: HostServices
) -> Awaitable[HookResponse] | None:
    if not _ours(integration):
        return None
    return sessions.report(integration, request, host)
