"""The hook implementations: thin, each routes to the module that does the work.

Every hook first checks that the integration is this plugin's, *before* creating any
coroutine: with ``firstresult`` a coroutine is never ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from b24_openlines_plugin import PLUGIN_NAME
from b24_openlines_plugin.settings import build_settings_view
from hooks import hookimpl
from hooks.errors import NotAvailable
from hooks.models import (
    Catalog,
    HookRequest,
    HookResponse,
    Integration,
    OAuthOutcome,
    SettingsView,
    WebhookOutcome,
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
def on_oauth_callback(integration: Integration) -> OAuthOutcome | None:
    if not _ours(integration):
        return None
    raise NotAvailable("Connecting a Bitrix24 portal arrives with the Bitrix24 step (issue 3)")


@hookimpl
def on_webhook(integration: Integration, request: HookRequest) -> WebhookOutcome | None:
    if not _ours(integration):
        return None
    raise NotAvailable("Processing Bitrix24 events arrives with the Bitrix24 step (issue 3)")


@hookimpl
def on_session(integration: Integration, request: HookRequest) -> HookResponse | None:
    if not _ours(integration):
        return None
    raise NotAvailable("Session binding arrives with the site-script step (issue 4)")
