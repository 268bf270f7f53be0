"""The host's pages: dashboard, settings, Raw data → Appeals and goals, the inbox, OAuth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from hooks.errors import BadRequest, Conflict, HookError, NotFound, ValidationFailed
from hooks.host.api import host_of, integration_of, render_view, save_settings
from hooks.host.csrf import FIELD as CSRF_FIELD
from hooks.host.csrf import csrf_field
from hooks.host.forms import form_name, nest_form
from hooks.host.i18n import localized, t
from hooks.host.inbox import DRAIN, SCHEDULE
from hooks.host.oauth_state import accept_state, sign_state
from hooks.host.params import path_id, query_number
from hooks.host.state import Host
from hooks.models import Catalog, FormField, LocalizedText, SettingsView, StoredAppeal

FORM_MAX_BYTES = 256 * 1024
DEFAULT_PLUGIN = "b24_openlines"


def make_templates(directory: str) -> Jinja2Templates:
    templates = Jinja2Templates(directory=directory)  # autoescapes .html: every value is escaped
    templates.env.globals.update(form_name=form_name, localized=localized, csrf_field=csrf_field)
    return templates


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    host = host_of(request)
    language = host.config.language
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        template,
        {"lang": language, "tr": lambda key: t(key, language), **context},
        status_code=status,
    )


async def dashboard(request: Request) -> Response:
    host = host_of(request)
    rows = []
    for integration in await host.repo.list_integrations():
        try:
            status = (await render_view(host, integration)).derived.status
        except HookError:
            status = None
        rows.append((integration, status))
    return page(
        request,
        "dashboard.html",
        rows=rows,
        plugins=host.plugins.names(),
        failures=host.plugins.failures,
    )


async def create_integration_form(request: Request) -> Response:
    host = host_of(request)
    form = await request.form()
    plugin = str(form.get("plugin") or DEFAULT_PLUGIN)
    name = str(form.get("name") or "").strip()[:200] or "Bitrix24"
    if plugin not in host.plugins.names():
        raise BadRequest(f"Unknown plugin {plugin!r}")
    integration = await host.repo.create_integration(plugin, name)
    return RedirectResponse(f"/integrations/{integration.id}/settings", status_code=303)


def _field_values(view: SettingsView) -> dict[str, Any]:
    return {f.key: f.value for s in view.sections for f in s.fields}


def _visible(field: FormField, values: dict[str, Any]) -> bool:
    return field.show_when is None or str(values.get(field.show_when.key)) == field.show_when.equals


def _header(fields: list[FormField]) -> list[FormField]:
    """One field per column of a table section (the first of each key's last part)."""
    columns: dict[str, FormField] = {}
    for field in fields:
        columns.setdefault(field.key.rsplit(".", 1)[-1], field)
    return list(columns.values())


def _rows(fields: list[FormField]) -> list[tuple[LocalizedText | None, list[FormField]]]:
    """The fields of a table section grouped by row, in the plugin's order."""
    rows: dict[str, tuple[LocalizedText | None, list[FormField]]] = {}
    for field in fields:
        key = field.row.en if field.row else ""
        rows.setdefault(key, (field.row, []))[1].append(field)
    return list(rows.values())


async def settings_page(request: Request) -> Response:
    host = host_of(request)
    integration = await integration_of(request)
    if request.method == "POST":
        async with request.form(max_fields=2000, max_files=0) as form:
            pairs = [
                (k, v) for k, v in form.multi_items() if isinstance(v, str) and k != CSRF_FIELD
            ]
        try:
            await save_settings(host, integration, nest_form(pairs))
        except ValidationFailed:
            view = await render_view(host, integration, nest_form(pairs))
            return _settings(request, integration.id, view, status=422, notice="has_errors")
        except Conflict:
            view = await render_view(host, integration, nest_form(pairs))
            return _settings(request, integration.id, view, status=409, notice="conflict")
        return RedirectResponse(f"/integrations/{integration.id}/settings?saved=1", status_code=303)
    view = await render_view(host, integration)
    notice = "saved" if request.query_params.get("saved") else None
    notice = "connected" if request.query_params.get("connected") else notice
    return _settings(request, integration.id, view, notice=notice)


def _settings(
    request: Request,
    integration_id: int,
    view: SettingsView,
    *,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    values = _field_values(view)
    orphans = {k: v for k, v in view.errors.items() if k not in values}
    return page(
        request,
        "settings.html",
        status=status,
        integration_id=integration_id,
        view=view,
        values=values,
        visible=lambda f: _visible(f, values),
        header=_header,
        rows=_rows,
        notice=notice,
        orphan_errors=orphans,
    )


async def connect(request: Request) -> Response:
    """Start OAuth: the portal's authorization page, with a signed state naming the integration."""
    host = host_of(request)
    integration = await integration_of(request)
    view = await render_view(host, integration)
    if view.derived.authorize_url is None:
        raise BadRequest("Fill in the portal address and the client id first, then save")
    state = sign_state(await host.repo.host_secret_key(), integration.id)
    parts = urlsplit(view.derived.authorize_url)
    query = (
        f"{parts.query}&{urlencode({'state': state})}"
        if parts.query
        else urlencode({"state": state})
    )
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=303)


async def oauth_callback(request: Request) -> Response:
    host = host_of(request)
    query = {k: v for k, v in request.query_params.items()}
    state = query.get("state")
    if not state:
        raise BadRequest("The callback has no state: start the connection from the settings page")
    integration = await host.repo.get_integration(await accept_state(host.repo, state))
    if integration is None:
        raise NotFound("The integration of this authorization no longer exists")
    outcome = await host.plugins.oauth_callback(
        integration, query=query, host=await host.services()
    )
    await host.repo.update_integration(
        integration.id,
        expected_version=integration.version,
        secrets=outcome.secrets,
        connection=outcome.connection,
    )
    # The plugin's periodic work (binding its handlers, catching up) starts now, not in a minute.
    await host.queue.enqueue(SCHEDULE, str(integration.id))
    return RedirectResponse(f"/integrations/{integration.id}/settings?connected=1", status_code=303)


def _names(catalog: Catalog) -> dict[str, dict[int, str]]:
    return {
        "employees": {e.id: e.name for e in catalog.employees},
        "sources": {s.id: s.name for s in catalog.sources},
        "sites": {s.id: s.name for s in catalog.sites},
        "campaigns": {c.id: c.name for c in catalog.campaigns},
    }


async def appeals_page(request: Request) -> Response:
    host = host_of(request)
    integration_id = query_number(request, "integration_id")
    offset = query_number(request, "offset") or 0
    limit = 100
    appeals: list[StoredAppeal] = await host.repo.list_appeals(
        integration_id=integration_id, limit=limit + 1, offset=offset
    )
    return page(
        request,
        "appeals.html",
        appeals=appeals[:limit],
        more=len(appeals) > limit,
        next_offset=offset + limit,
        integrations=await host.repo.list_integrations(),
        integration_id=integration_id,
        names=_names(await host.repo.get_catalog()),
    )


async def inbox_page(request: Request) -> Response:
    host = host_of(request)
    status = request.query_params.get("status") or "failed"
    if status not in ("pending", "done", "ignored", "failed"):
        raise BadRequest("Unknown status")
    items = await host.repo.list_inbox(status=status, limit=200)  # type: ignore[arg-type]
    return page(request, "inbox.html", items=items, tab=status)


async def inbox_retry(request: Request) -> Response:
    host: Host = host_of(request)
    item_id = path_id(request, "item_id")
    item = (
        None
        if item_id is None
        else await host.repo.requeue_inbox_item(item_id, now=datetime.now(UTC))
    )
    if item is None:
        raise NotFound("No failed inbox item with this id")
    await host.queue.enqueue(DRAIN, str(item.integration_id))
    return RedirectResponse("/inbox?status=pending", status_code=303)
