"""The host's pages: dashboard, settings, Raw data → Appeals and goals, the inbox, OAuth."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from hooks.errors import BadRequest, Conflict, HookError, NotFound, ValidationFailed
from hooks.host.account_time import shown
from hooks.host.api import health_of, host_of, integration_of, render_view, save_settings
from hooks.host.appeal_views import (
    CHART_LIMIT,
    PAGE_SIZE,
    AppealFilters,
    Names,
    chart_data,
    csv_text,
    utm_pairs,
)
from hooks.host.csrf import FIELD as CSRF_FIELD
from hooks.host.csrf import csrf_field
from hooks.host.forms import form_name, nest_form
from hooks.host.i18n import LANGUAGES, N_, gettext, localized, translations
from hooks.host.inbox import DRAIN, SCHEDULE
from hooks.host.inbox_view import event_name, reason
from hooks.host.oauth_state import StaleState, accept_state, sign_state
from hooks.host.params import path_id
from hooks.host.state import Host
from hooks.models import (
    FormField,
    Integration,
    Language,
    LocalizedText,
    SettingsView,
    Status,
    StoredAppeal,
)

FORM_MAX_BYTES = 256 * 1024
DEFAULT_PLUGIN = "b24_openlines"


def make_templates(directory: str) -> dict[Language, Jinja2Templates]:
    """The pages' templates once per language, each with its catalog installed (Jinja2's i18n
    extension: ``_``, ``ngettext`` and ``{% trans %}``). They autoescape .html: every value is
    escaped; only literal msgids go through ``_`` (newstyle gettext marks its result safe)."""
    made: dict[Language, Jinja2Templates] = {}
    for language in LANGUAGES:
        env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(),
            extensions=["jinja2.ext.i18n"],
        )
        env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
        env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        env.globals.update(form_name=form_name, localized=localized, csrf_field=csrf_field)
        made[language] = Jinja2Templates(env=env)
    return made


def page(
    request: Request,
    template: str,
    status: int = 200,
    *,
    language: Language | None = None,
    **context: Any,
) -> Response:
    """A page in ``language`` (default: the host's configured language)."""
    chosen = language or host_of(request).config.language
    templates: dict[Language, Jinja2Templates] = request.app.state.templates
    return templates[chosen].TemplateResponse(
        request, template, {"lang": chosen, **context}, status_code=status
    )


async def dashboard(request: Request) -> Response:
    host = host_of(request)
    rows = []
    for integration in await host.repo.list_integrations():
        health = await health_of(host, integration.id)
        try:
            status = (await render_view(host, integration, health=health)).derived.status
        except HookError:
            status = None
        rows.append((integration, status, health))
    return page(
        request,
        "dashboard.html",
        rows=rows,
        plugins=host.plugins.names(),
        failures=host.plugins.failures,
        when=_when(host),
    )


def _when(host: Host) -> Callable[[datetime | None], str]:
    """Times as the pages show them: in the account's zone; none yet: a dash."""
    zone = ZoneInfo(host.config.timezone)
    return lambda value: "—" if value is None else shown(value, zone)


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
            saved, view = await save_settings(host, integration, nest_form(pairs))
        except ValidationFailed:
            view = await render_view(host, integration, nest_form(pairs))
            return await _settings(request, integration, view, status=422, notice="has_errors")
        except Conflict:
            view = await render_view(host, integration, nest_form(pairs))
            return await _settings(request, integration, view, status=409, notice="conflict")
        if view.notes:  # what was changed in what was typed is said once, on this answer
            return await _settings(request, saved, view, notice="saved")
        return RedirectResponse(f"/integrations/{integration.id}/settings?saved=1", status_code=303)
    view = await render_view(host, integration)
    notice = "saved" if request.query_params.get("saved") else None
    notice = "connected" if request.query_params.get("connected") else notice
    notice = OAUTH_NOTICES.get(request.query_params.get("oauth_error", ""), notice)
    notice = "renamed" if request.query_params.get("renamed") else notice
    return await _settings(request, integration, view, notice=notice)


async def _settings(
    request: Request,
    integration: Integration,
    view: SettingsView,
    *,
    status: int = 200,
    notice: str | None = None,
    result: Status | None = None,
) -> Response:
    """The settings page; ``result``: the answer of an action on the connection."""
    host = host_of(request)
    values = _field_values(view)
    orphans = {k: v for k, v in view.errors.items() if k not in values}
    # What the plugin learnt of the remote side stays until it is disconnected (nulls then).
    connected = any(value is not None for value in integration.connection.values())
    return page(
        request,
        "settings.html",
        status=status,
        integration_id=integration.id,
        integration=integration,
        health=await health_of(host, integration.id),
        when=_when(host),
        connected=connected,
        result=result,
        view=view,
        values=values,
        visible=lambda f: _visible(f, values),
        header=_header,
        rows=_rows,
        notice=notice,
        orphan_errors=orphans,
    )


async def connection_action(request: Request) -> Response:
    """*Проверить подключение* (``check``) and *Отключить* (``disconnect``), by the plugin."""
    host = host_of(request)
    integration = await integration_of(request)
    action = request.url.path.rsplit("/", 1)[-1]
    answer = await host.plugins.connection_action(
        integration, action=action, host=await host.services()
    )
    fresh = await integration_of(request)  # the action may have written the connection
    return await _settings(request, fresh, await render_view(host, fresh), result=answer.status)


async def rename_form(request: Request) -> Response:
    host = host_of(request)
    integration = await integration_of(request)
    form = await request.form()
    name = str(form.get("name") or "").strip()[:200]
    if name:
        await host.repo.rename_integration(integration.id, name)
    return RedirectResponse(f"/integrations/{integration.id}/settings?renamed=1", status_code=303)


async def delete_page(request: Request) -> Response:
    """GET: what deleting takes away, and a checkbox to confirm; POST: delete if ticked."""
    host = host_of(request)
    integration = await integration_of(request)
    if request.method == "POST":
        form = await request.form()
        if form.get("confirm") == "yes":
            await host.repo.delete_integration(integration.id)
            return RedirectResponse("/?deleted=1", status_code=303)
    health = await health_of(host, integration.id)
    return page(
        request,
        "delete.html",
        status=422 if request.method == "POST" else 200,
        integration=integration,
        health=health,
        unconfirmed=request.method == "POST",
    )


async def connect(request: Request) -> Response:
    """Start OAuth: the portal's authorization page, with a signed state naming the integration."""
    host = host_of(request)
    integration = await integration_of(request)
    view = await render_view(host, integration)
    if view.derived.authorize_url is None:
        raise BadRequest(N_("Fill in the portal address and the client id first, then save"))
    state = sign_state(await host.repo.host_secret_key(), integration.id)
    parts = urlsplit(view.derived.authorize_url)
    query = (
        f"{parts.query}&{urlencode({'state': state})}"
        if parts.query
        else urlencode({"state": state})
    )
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=303)


# What an OAuth callback that failed sends the person back to the settings with (a notice of
# settings.html: what happened and what to do). The plugin's own failures say their reason in the
# status, which the plugin keeps (``failed``).
OAUTH_NOTICES: Final = {
    "used_state": "oauth_used_state",
    "expired_state": "oauth_expired_state",
    "access_denied": "oauth_access_denied",
    "refused": "oauth_refused",
    "failed": "oauth_failed",
}


async def oauth_callback(request: Request) -> Response:
    """Finish OAuth; whatever fails sends the person back to the integration's settings with a
    message saying what to do (a state that names no integration: the error page)."""
    host = host_of(request)
    query = {k: v for k, v in request.query_params.items()}
    state = query.get("state")
    try:
        if not state:
            raise BadRequest("The callback has no state", code="no_state")
        integration_id = await accept_state(host.repo, state)
    except StaleState as exc:
        return _back_to_settings(exc.integration_id, exc.code)
    except BadRequest:
        return _oauth_error(request)
    integration = await host.repo.get_integration(integration_id)
    if integration is None:
        return _oauth_error(request)
    if "error" in query:  # RFC 6749 §4.1.2.1: the person (or the server) said no
        return _back_to_settings(
            integration.id, "access_denied" if query["error"] == "access_denied" else "refused"
        )
    try:
        outcome = await host.plugins.oauth_callback(
            integration, query=query, host=await host.services()
        )
    except HookError:
        return _back_to_settings(integration.id, "failed")
    await host.repo.update_integration(
        integration.id,
        expected_version=integration.version,
        secrets=outcome.secrets,
        connection=outcome.connection,
    )
    # The plugin's periodic work (binding its handlers, catching up) starts now, not in a minute.
    await host.queue.enqueue(SCHEDULE, str(integration.id))
    return RedirectResponse(f"/integrations/{integration.id}/settings?connected=1", status_code=303)


def _back_to_settings(integration_id: int, why: str) -> Response:
    query = urlencode({"oauth_error": why})
    return RedirectResponse(f"/integrations/{integration_id}/settings?{query}", status_code=303)


def _oauth_error(request: Request) -> Response:
    """A callback whose state the host did not sign, or whose integration is gone."""
    error = BadRequest("The authorization link is not valid", code="invalid_state")
    return error_page(
        request,
        error,
        N_(
            "The authorization link is not valid, or its integration was deleted. Open "
            "Integrations, then the integration's settings, and press “Connect Bitrix24”."
        ),
    )


def error_page(request: Request, error: HookError, message: str | None = None) -> Response:
    """The error page: ``message`` (or the error's own, kept in English for the API and the
    logs) in the page's language when the catalogs have it (the messages marked ``N_``); any
    other gets a headline in the page's language by its status, with the text as its detail."""
    text = message or error.message
    language = host_of(request).config.language
    shown_text = gettext(text, language) if text else text
    detail = None
    if language != "en" and shown_text == text:
        headline = _STATUS_HEADLINES.get(error.status, _STATUS_HEADLINES[500])
        shown_text, detail = gettext(headline, language), text
    return page(
        request, "error.html", status=error.status, error=error, message=shown_text, detail=detail
    )


# What an error page says first when its own text has no translation (a request made by hand).
_STATUS_HEADLINES: Final = {
    400: N_("The request was not accepted: check what was sent."),
    403: N_("Access denied."),
    404: N_("Not found."),
    405: N_("The request was not accepted: check what was sent."),
    409: N_("The data changed meanwhile: reload the page and try again."),
    413: N_("The request was not accepted: it is too large."),
    422: N_("The request was not accepted: check what was sent."),
    429: N_("Too many requests: try again a little later."),
    500: N_("Something went wrong: try again, and if it repeats, tell the administrator."),
    502: N_("Bitrix24 did not answer as expected: try again a little later."),
    503: N_("The service is busy: try again a little later."),
}


async def appeals_page(request: Request) -> Response:
    host = host_of(request)
    zone = ZoneInfo(host.config.timezone)
    filters = AppealFilters.of(request)
    chosen = filters.repository_filters(zone)
    names = Names(await host.repo.get_catalog(), host.config.language)
    total = await host.repo.count_appeals(**chosen)
    appeals = await host.repo.list_appeals(**chosen, limit=PAGE_SIZE, offset=filters.offset)
    counted = await host.repo.list_appeals(**chosen, limit=CHART_LIMIT)
    return page(
        request,
        "appeals.html",
        appeals=appeals,
        total=total,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters=filters,
        integrations=await host.repo.list_integrations(),
        names=names,
        zone=zone,
        shown=shown,
        utm_pairs=utm_pairs,
        chart=json.dumps(chart_data(counted, names, zone), ensure_ascii=False),
    )


async def appeals_csv(request: Request) -> Response:
    """The page's appeals, every page of them, as a CSV file with the page's filters."""
    host = host_of(request)
    zone = ZoneInfo(host.config.timezone)
    chosen = AppealFilters.of(request).repository_filters(zone)
    names = Names(await host.repo.get_catalog(), host.config.language)
    stored: list[StoredAppeal] = []
    while batch := await host.repo.list_appeals(**chosen, limit=1000):
        stored.extend(batch)
        last = batch[-1].appeal
        chosen["after"] = (last.created_at, last.key)  # a keyset: arrivals never shift it
    return Response(
        csv_text(stored, names, zone, host.config.language),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="appeals.csv"'},
    )


INBOX_TABS: Final = ("all", "failed", "pending", "done", "ignored")


async def inbox_page(request: Request) -> Response:
    host = host_of(request)
    tab = request.query_params.get("status") or "all"
    if tab not in INBOX_TABS:
        raise BadRequest(N_("Unknown status"))
    status = None if tab == "all" else tab
    items = await host.repo.list_inbox(status=status, limit=200)  # type: ignore[arg-type]
    language = host.config.language
    return page(
        request,
        "inbox.html",
        items=items,
        names={i.id: i.name for i in await host.repo.list_integrations()},
        tab=tab,
        tabs=INBOX_TABS,
        zone=ZoneInfo(host.config.timezone),
        shown=shown,
        event_name=event_name,
        reason=lambda item: reason(item, language),
    )


async def inbox_retry(request: Request) -> Response:
    host: Host = host_of(request)
    item_id = path_id(request, "item_id")
    item = (
        None
        if item_id is None
        else await host.repo.requeue_inbox_item(item_id, now=datetime.now(UTC))
    )
    if item is None:
        raise NotFound(N_("No failed inbox item with this id"))
    await host.queue.enqueue(DRAIN, str(item.integration_id))
    return RedirectResponse("/inbox", status_code=303)
