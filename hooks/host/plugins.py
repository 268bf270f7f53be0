"""Loading plugins and calling their hooks, with types pluggy cannot give (pluggy#191).

Plugins are found only through the ``analytics_host`` entry-point group. A plugin that fails to
import, to register or to match the hook specs is recorded in ``failures`` and left out: one
broken plugin never takes the host down.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar

import pluggy

from hooks import NAME, specs
from hooks.errors import NotAvailable, NotFound
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

log = logging.getLogger("hooks.host.plugins")

T = TypeVar("T")


@dataclass(frozen=True)
class LoadFailure:
    name: str
    error: str


@dataclass
class PluginHost:
    """The plugin manager behind one typed method per hook."""

    pm: pluggy.PluginManager
    failures: list[LoadFailure] = field(default_factory=list)

    def names(self) -> list[str]:
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    def hook_names(self, plugin_name: str) -> set[str]:
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is None:
            return set()
        return {caller.name for caller in self.pm.get_hookcallers(plugin) or []}

    async def settings_view(
        self,
        integration: Integration,
        *,
        catalog: Catalog,
        submitted: Mapping[str, Any] | None,
        host: HostServices,
        health: IntegrationHealth | None = None,
    ) -> SettingsView:
        return await self._call(
            "on_settings_render",
            integration,
            SettingsView,
            catalog=catalog,
            submitted=submitted,
            host=host,
            health=health,
        )

    async def connection_action(
        self, integration: Integration, *, action: str, host: HostServices
    ) -> ConnectionCheck:
        return await self._call(
            "on_connection_action", integration, ConnectionCheck, action=action, host=host
        )

    async def oauth_callback(
        self, integration: Integration, *, query: Mapping[str, str], host: HostServices
    ) -> OAuthOutcome:
        return await self._call(
            "on_oauth_callback", integration, OAuthOutcome, query=query, host=host
        )

    async def webhook_verify(
        self, integration: Integration, *, request: HookRequest, host: HostServices
    ) -> WebhookVerdict:
        return await self._call(
            "on_webhook_verify", integration, WebhookVerdict, request=request, host=host
        )

    async def webhook(
        self, integration: Integration, *, request: HookRequest, host: HostServices
    ) -> WebhookOutcome:
        return await self._call(
            "on_webhook", integration, WebhookOutcome, request=request, host=host
        )

    async def session(
        self, integration: Integration, *, request: HookRequest, host: HostServices
    ) -> HookResponse:
        return await self._call("on_session", integration, HookResponse, request=request, host=host)

    async def messenger_code(
        self, integration: Integration, *, request: HookRequest, host: HostServices
    ) -> HookResponse:
        return await self._call(
            "on_messenger_code", integration, HookResponse, request=request, host=host
        )

    async def schedule(self, integration: Integration, *, host: HostServices) -> ScheduleOutcome:
        return await self._call("on_schedule", integration, ScheduleOutcome, host=host)

    async def _call(
        self, hook: str, integration: Integration, expected: type[T], **kwargs: Any
    ) -> T:
        """Call ``hook`` of the plugin that owns the integration only, and await its answer."""
        owner = self.pm.get_plugin(integration.plugin)
        if owner is None:
            raise NotAvailable(f"Plugin {integration.plugin!r} is not loaded")
        others = [p for name, p in self.pm.list_name_plugin() if name != integration.plugin]
        caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
        result = caller(integration=integration, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            raise NotFound(f"Plugin {integration.plugin!r} does not implement {hook}")
        if not isinstance(result, expected):
            raise TypeError(f"{integration.plugin}.{hook} returned {type(result).__name__}")
        return result


def get_plugin_manager(
    *, load_entrypoints: bool = True, blocked: Iterable[str] = (), extra: Mapping[str, object] = {}
) -> PluginHost:
    """A fresh plugin manager: ``extra`` plugins (tests) plus the installed entry points."""
    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(specs)
    for name in blocked:
        pm.set_blocked(name)
    host = PluginHost(pm)
    for name, plugin in extra.items():
        _register(host, name, lambda plugin=plugin: plugin)
    if load_entrypoints:
        for ep in entry_points(group=NAME):
            if not pm.is_blocked(ep.name) and pm.get_plugin(ep.name) is None:
                _register(host, ep.name, ep.load)
    return host


def _register(host: PluginHost, name: str, load: Any) -> None:
    try:
        host.pm.register(load(), name=name)
        host.pm.check_pending()
    except Exception as exc:  # a plugin's bug must not stop the host
        if host.pm.get_plugin(name) is not None:
            host.pm.unregister(name=name)
        log.exception("plugin %s failed to load", name)
        host.failures.append(LoadFailure(name, f"{type(exc).__name__}: {exc}"))
