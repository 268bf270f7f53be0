"""The hook implementations: thin, each routes to the module that does the work.

Every hook first checks that the integration is this plugin's, *before* creating any
coroutine: with ``firstresult`` a coroutine is never ``None``.
"""

from __future__ import annotations

import logging
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
from b24_openlines_plugin.health import is_refusal, record_problem
from b24_openlines_plugin.i18n import _
from b24_openlines_plugin.settings import build_settings_view
from hooks import hookimpl
from hooks.errors import HookError, RetryLater
from hooks.models import (
    Catalog,
    ConnectionCheck,
    HookRequest,
    HookResponse,
    Integration,
    IntegrationHealth,
    OAuthOutcome,
    ScheduleOutcome,
    SettingsView,
    WebhookOutcome,
    WebhookVerdict,
)
from hooks.services import HostServices

log = logging.getLogger("b24_openlines_plugin")


def _ours(integration: Integration) -> bool:
    return integration.plugin == PLUGIN_NAME


@hookimpl
def on_settings_render(
    integration: Integration,
    catalog: Catalog,
    submitted: Mapping[str, Any] | None,
    host: HostServices,
    health: IntegrationHealth | None = None,
) -> SettingsView | None:
    if not _ours(integration):
        return None
    return build_settings_view(integration, catalog, submitted, host, health)


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
    # The host's log context adds the integration and the inbox item to this line.
    log.info("%s of entity %s", event.name, event.entity_id, extra={"event": event.name})
    portal = Portal.of(integration, host)
    if not portal.settings.active:
        return WebhookOutcome(
            result="ignored", reason="the integration is not active", reason_text=events.INACTIVE
        )
    if not portal.connection.connected:
        raise RetryLater("The portal is not connected yet: connect it in the settings")
    client = connection.rest_client(integration, host)
    appeal = await appeals.process_event(client, portal, event.name, event.entity_id)
    if appeal is None:
        return WebhookOutcome(
            result="ignored",
            reason=f"{event.name} {event.entity_id}: not handled, or no Open Lines chat behind it",
            reason_text=_(
                "%(event)s %(entity_id)s: not handled, or no Open Lines chat behind it",
                event=event.name,
                entity_id=event.entity_id,
            ),
        )
    return WebhookOutcome(result="processed", appeal_keys=[appeal.key])


@hookimpl
def on_schedule(integration: Integration, host: HostServices) -> Awaitable[ScheduleOutcome] | None:
    if not _ours(integration):
        return None
    return _catch_up(integration, host)


async def _catch_up(integration: Integration, host: HostServices) -> ScheduleOutcome:
    """The periodic run; a refusal that a person must act on is remembered for the status."""
    try:
        return await catchup.run(integration, host)
    except HookError as exc:
        if is_refusal(exc.code):
            await record_problem(host, integration.id, exc.code)
        raise


@hookimpl
def on_connection_action(
    integration: Integration, action: str, host: HostServices
) -> Awaitable[ConnectionCheck] | None:
    if not _ours(integration):
        return None
    return connection.act(integration, action, host)


@hookimpl
def on_session(
    integration: Integration, request: HookRequest, host: HostServices
) -> Awaitable[HookResponse] | None:
    if not _ours(integration):
        return None
    return sessions.report(integration, request, host)


@hookimpl
def on_messenger_code(
    integration: Integration, request: HookRequest, host: HostServices
) -> Awaitable[HookResponse] | None:
    if not _ours(integration):
        return None
    return sessions.mint(integration, request, host)
