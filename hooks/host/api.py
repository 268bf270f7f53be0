"""The host's JSON surface (DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hooks.errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from hooks.host.account_time import day_start
from hooks.host.i18n import N_, gettext
from hooks.host.jsonbody import read_bounded, read_json
from hooks.host.params import path_id, query_number
from hooks.host.plugins import PluginHost
from hooks.host.ratelimit import RateLimiter
from hooks.host.state import Host, hook_request
from hooks.host.visits import new_visitor_session
from hooks.models import HookResponse, Integration, IntegrationHealth, SettingsView

JSON_MAX_BYTES = 256 * 1024
VISIT_MAX_BYTES = 8 * 1024


class NewIntegration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plugin: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)


class Visit(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str = Field(min_length=1, max_length=4000)
    referrer: str | None = Field(None, max_length=4000)


def host_of(request: Request) -> Host:
    host: Host = request.app.state.host
    return host


async def json_body(request: Request, limit: int = JSON_MAX_BYTES) -> Any:
    """The body as JSON, within ``limit`` bytes and ``jsonbody.MAX_DEPTH`` levels."""
    return await read_json(request, limit)


JSON_TYPES = frozenset({"application/json", "application/merge-patch+json"})


async def account_json(request: Request) -> Any:
    """The JSON body of a request that changes the account: declared as JSON, which a page of
    another site cannot send without the browser asking first (a form or ``text/plain`` can),
    so such a page can never create, change or rename an integration."""
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared not in JSON_TYPES:
        raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json)")
    return await json_body(request)


async def integration_of(request: Request) -> Integration:
    """The integration named by the path's ``integration_id``; ``NotFound`` otherwise."""
    integration_id = path_id(request, "integration_id")
    repo = host_of(request).repo
    integration = None if integration_id is None else await repo.get_integration(integration_id)
    if integration is None:
        raise NotFound(N_("No such integration"))
    return integration


def integration_json(integration: Integration, view: SettingsView, host: Host) -> dict[str, Any]:
    """The integration as the API shows it: settings with secrets masked, plus derived values."""
    derived = view.derived
    return {
        "id": integration.id,
        "plugin": integration.plugin,
        "name": integration.name,
        "settings": view.values,
        "webhook_url": derived.webhook_url,
        "redirect_url": derived.redirect_url,
        "authorize_url": derived.authorize_url,
        "portal_url": derived.portal_url,
        "site_script": derived.site_script,
        "notes": {key: text.get(host.config.language) for key, text in view.notes.items()},
        "status": {
            "level": derived.status.level,
            "text": derived.status.text.get(host.config.language),
        },
        "created_at": integration.created_at.isoformat(),
        "updated_at": integration.updated_at.isoformat(),
    }


async def health_of(host: Host, integration_id: int) -> IntegrationHealth:
    """The integration's figures; days are the account's (midnight in its time zone)."""
    zone = ZoneInfo(host.config.timezone)
    today = datetime.now(zone).date()
    return await host.repo.integration_health(
        integration_id,
        today=day_start(today, zone),
        week=day_start(today - timedelta(days=6), zone),
        failures_since=datetime.now(UTC) - timedelta(hours=24),
    )


async def render_view(
    host: Host,
    integration: Integration,
    submitted: Any = None,
    health: IntegrationHealth | None = None,
) -> SettingsView:
    """The plugin's view; its status reads the integration's health (fetched unless given)."""
    return await host.plugins.settings_view(
        integration,
        catalog=await host.repo.get_catalog(),
        submitted=submitted,
        host=await host.services(),
        health=health or await health_of(host, integration.id),
    )


async def save_settings(
    host: Host, integration: Integration, submitted: dict[str, Any]
) -> tuple[Integration, SettingsView]:
    """Validate through the plugin, then save with compare-and-swap (``ValidationFailed``)."""
    view = await render_view(host, integration, submitted)
    if view.store is None:
        language = host.config.language
        raise ValidationFailed({key: text.get(language) for key, text in view.errors.items()})
    saved = await host.repo.update_integration(
        integration.id,
        expected_version=integration.version,
        settings=view.store.settings,
        secrets=view.store.secrets,
    )
    fresh = await render_view(host, saved)
    return saved, fresh.model_copy(update={"notes": view.notes})


async def create_integration(request: Request) -> Response:
    host = host_of(request)
    try:
        new = NewIntegration.model_validate(await account_json(request))
    except ValidationError as exc:
        raise BadRequest(_first_error(exc)) from exc
    if new.plugin not in host.plugins.names():
        raise BadRequest(f"Unknown plugin {new.plugin!r}")
    integration = await host.repo.create_integration(new.plugin, new.name)
    view = await render_view(host, integration)
    return JSONResponse(integration_json(integration, view, host), status_code=201)


async def list_integrations(request: Request) -> Response:
    host = host_of(request)
    items = []
    for integration in await host.repo.list_integrations():
        items.append(integration_json(integration, await render_view(host, integration), host))
    return JSONResponse({"integrations": items})


async def get_integration(request: Request) -> Response:
    host = host_of(request)
    integration = await integration_of(request)
    return JSONResponse(integration_json(integration, await render_view(host, integration), host))


class Renamed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


async def patch_integration(request: Request) -> Response:
    """``{"name": …}``: rename the integration."""
    host = host_of(request)
    integration = await integration_of(request)
    try:
        renamed = Renamed.model_validate(await account_json(request))
    except ValidationError as exc:
        raise BadRequest(_first_error(exc)) from exc
    saved = await host.repo.rename_integration(integration.id, renamed.name.strip() or "Bitrix24")
    return JSONResponse(integration_json(saved, await render_view(host, saved), host))


async def delete_integration(request: Request) -> Response:
    """The integration and everything of it (its appeals too): 204, or 404."""
    integration = await integration_of(request)
    await host_of(request).repo.delete_integration(integration.id)
    return Response(status_code=204)


async def put_settings(request: Request) -> Response:
    """All the settings at once: a setting left out takes its default, so one that would change
    that way is refused (422) rather than cleared without a word — PATCH changes some."""
    host = host_of(request)
    integration = await integration_of(request)
    submitted = await _settings_body(request)
    before = await render_view(host, integration)
    after = await render_view(host, integration, submitted)
    dropped = [
        key
        for key, value in after.values.items()
        if key not in submitted and after.store is not None and before.values.get(key) != value
    ]
    if dropped:
        message = gettext(
            "Left out but set now: PUT replaces all the settings — send this field, or change "
            "some settings with PATCH",
            host.config.language,
        )
        raise ValidationFailed(dict.fromkeys(dropped, message))
    saved, view = await save_settings(host, integration, submitted)
    return JSONResponse(integration_json(saved, view, host))


async def patch_settings(request: Request) -> Response:
    """Some of the settings, as a JSON merge patch (RFC 7396) on the stored ones: a key with
    null goes back to its default, an object merges key by key, secrets left out are kept."""
    host = host_of(request)
    integration = await integration_of(request)
    patch = await _settings_body(request)
    saved, view = await save_settings(host, integration, merge_patch(integration.settings, patch))
    return JSONResponse(integration_json(saved, view, host))


async def _settings_body(request: Request) -> dict[str, Any]:
    submitted = await account_json(request)
    if not isinstance(submitted, dict):
        raise BadRequest("Settings must be a JSON object")
    return submitted


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: ``patch`` applied to ``target`` (neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


async def get_catalog(request: Request) -> Response:
    catalog = await host_of(request).repo.get_catalog()
    return JSONResponse(catalog.model_dump(mode="json"))


async def list_appeals(request: Request) -> Response:
    host = host_of(request)
    integration_id = query_number(request, "integration_id")
    limit = min(query_number(request, "limit") or 100, 500)
    offset = query_number(request, "offset") or 0
    stored = await host.repo.list_appeals(integration_id=integration_id, limit=limit, offset=offset)
    return JSONResponse({"appeals": [s.appeal.model_dump(mode="json") for s in stored]})


def _count_client(limiter: RateLimiter, request: Request) -> None:
    """Count the request against its client IP before any work (``RateLimited`` when over)."""
    limiter.check(request.client.host if request.client else "unknown")


async def add_visit(request: Request) -> Response:
    """A page view from ``/tracker.js``: open to every site, so any origin may call it."""
    host = host_of(request)
    _count_client(host.visit_limiter, request)
    cors = {"access-control-allow-origin": "*"}
    if request.method == "OPTIONS":
        cors |= {
            "access-control-allow-methods": "POST",
            "access-control-allow-headers": "content-type",
        }
        return Response(status_code=204, headers=cors)
    try:
        visit = Visit.model_validate(await json_body(request, VISIT_MAX_BYTES))
    except ValidationError as exc:
        raise BadRequest(_first_error(exc)) from exc
    if not visit.url.startswith(("http://", "https://")):
        raise BadRequest("url must be an http(s) address")
    catalog, key = await host.repo.get_catalog(), await host.repo.host_secret_key()
    session = new_visitor_session(visit.url, visit.referrer, catalog, key=key)
    await host.repo.add_visitor_session(session)
    return JSONResponse({"session_id": session.id}, status_code=201, headers=cors)


async def report_session(request: Request) -> Response:
    """What the plugin's site script posts; the plugin answers, CORS headers included."""
    return await _from_site_script(request, PluginHost.session)


async def messenger_code(request: Request) -> Response:
    """A code for the visitor's messenger links, minted by the plugin: only the integration's
    settings know the client's sites, whose ``Origin`` alone may ask (as for session reports)."""
    return await _from_site_script(request, PluginHost.messenger_code)


SiteHook = Callable[..., Awaitable[HookResponse]]


async def _from_site_script(request: Request, hook: SiteHook) -> Response:
    """A site script's request, answered by the integration's plugin: counted against the
    client's IP as every site script's request is, and capped in size."""
    host = host_of(request)
    _count_client(host.session_limiter, request)
    integration = await integration_of(request)
    body = await read_bounded(request, host.config.session_max_bytes)
    answer = await hook(
        host.plugins, integration, request=hook_request(request, body), host=await host.services()
    )
    if answer.json_body is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return JSONResponse(answer.json_body, status_code=answer.status, headers=answer.headers)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "body"
    return f"{where}: {error['msg']}"
