"""The settings page of one integration: its sections and fields, what a submission stores,
and what the page shows beside them (the URLs to copy, the status, the import's progress).

``build_settings_view`` is the one entry: the host calls it to show the page, to check a
submission from the page or the JSON API, and to answer with what to store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlencode, urlsplit

from pydantic import SecretStr, TypeAdapter, ValidationError

from b24_openlines_plugin import REQUIRED_SCOPES
from b24_openlines_plugin.connectors import CONNECTOR_ID_PATTERN, CONNECTORS, connector_label
from b24_openlines_plugin.health import error_status, health_status, problem_text
from b24_openlines_plugin.i18n import fill, join, same
from b24_openlines_plugin.portal import parse_portal
from b24_openlines_plugin.settings import texts
from b24_openlines_plugin.settings.model import (
    FIELDS,
    KNOWN_CONNECTORS,
    MASK,
    META,
    ROW_FIELDS,
    SECRET_KEYS,
    B24Settings,
    FormMeta,
    SectionId,
)
from b24_openlines_plugin.settings.texts import SectionText
from b24_openlines_plugin.settings.validation import (
    catalog_items,
    is_shown,
    parse,
    rule_problems,
    without_secrets,
)
from b24_openlines_plugin.site_script import render_site_script
from b24_openlines_plugin.state import Connection, connection_of
from hooks.models import (
    Catalog,
    Choice,
    DerivedValues,
    FormField,
    FormSection,
    Integration,
    IntegrationHealth,
    Language,
    LocalizedText,
    MessengerLinkFigures,
    SettingsView,
    Status,
    StoredSettings,
)
from hooks.services import HostUrls


class SettingsHost(Protocol):
    """What the settings need of the host: its URLs, and its language for the site script's
    operator-facing line (``HostServices`` provides both)."""

    @property
    def urls(self) -> HostUrls: ...

    @property
    def language(self) -> Language: ...


@dataclass(frozen=True, eq=False)
class _Section:
    id: SectionId
    text: SectionText
    layout: Literal["form", "table"] = "form"


_SECTIONS = (
    _Section("credentials", texts.CREDENTIALS),
    _Section("activation", texts.ACTIVATION),
    _Section("webhook", texts.WEBHOOK),
    _Section("employee", texts.EMPLOYEE),
    _Section("traffic", texts.TRAFFIC),
    _Section("messengers", texts.MESSENGERS, layout="table"),
    _Section("messenger_links", texts.MESSENGER_LINKS),
    _Section("script", texts.SCRIPT),
)
_BOOL: TypeAdapter[bool] = TypeAdapter(bool)


def build_settings_view(
    integration: Integration,
    catalog: Catalog,
    submitted: Mapping[str, Any] | None,
    host: SettingsHost,
    health: IntegrationHealth | None = None,
) -> SettingsView:
    """The settings page of ``integration``, and the validation of ``submitted`` if given.

    ``submitted`` is nested JSON: from the page (strings; an unticked checkbox is absent) or
    from the JSON API (real types). A valid submission comes back with ``store`` set; one with
    errors has ``errors`` by dotted key, shows what was typed (never secrets) and ``store=None``.
    Either may carry ``notes``: what was changed in what was typed. The derived values describe
    the settings in force: the new ones once valid, else the stored ones.
    """
    page = _Page(integration, catalog, host, health)
    stored, _, _ = parse(without_secrets(integration.settings))
    stored_secrets = frozenset(
        key
        for key, value in integration.secrets.items()
        if key in SECRET_KEYS and value.get_secret_value()
    )
    if submitted is None:
        return page.view(stored.settings_json(), stored_secrets, stored, {}, None)

    data = {key: value for key, value in submitted.items() if not _keeps_stored(key, value)}
    settings, errors, dropped = parse(data)
    has_client_secret = settings.client_secret is not None or "client_secret" in stored_secrets
    if not errors.keys() & {"active", "traffic_type"}:  # the rules hinge on these two
        for problem in rule_problems(settings, catalog, has_client_secret):
            errors.setdefault(problem.key, problem.text)
    notes = _notes(data, settings)
    if errors:
        shown = settings.settings_json()
        for path, raw in dropped.items():
            if path[0] in META and path[0] not in SECRET_KEYS:
                target = shown.setdefault(path[0], {}) if len(path) == 2 else shown
                target[path[-1]] = raw
        return page.view(shown, stored_secrets, stored, errors, None, notes)

    changed = _changed_secrets(settings, integration)
    store = StoredSettings(settings=settings.settings_json(), secrets=changed)
    return page.view(store.settings, stored_secrets | changed.keys(), settings, {}, store, notes)


def _notes(submitted: Mapping[str, Any], settings: B24Settings) -> dict[str, LocalizedText]:
    """A portal pasted with a path, now its address alone (it parsed, so it parses again)."""
    raw = submitted.get("portal")
    if settings.portal is None or not isinstance(raw, str):
        return {}
    portal = parse_portal(raw)
    return {"portal": texts.portal_trimmed(portal.url, portal.dropped)} if portal.dropped else {}


def _keeps_stored(key: str, value: Any) -> bool:
    """A secret left empty, null or still showing the mask keeps the stored one."""
    return key in SECRET_KEYS and (
        value is None or (isinstance(value, str) and value.strip() in ("", MASK))
    )


def _changed_secrets(settings: B24Settings, integration: Integration) -> dict[str, SecretStr]:
    changed: dict[str, SecretStr] = {}
    for key in SECRET_KEYS:
        new = getattr(settings, key)
        old = integration.secrets.get(key)
        if isinstance(new, SecretStr) and (
            old is None or old.get_secret_value() != new.get_secret_value()
        ):
            changed[key] = new
    return changed


@dataclass(frozen=True)
class _Page:
    """Builds the SettingsView of one integration."""

    integration: Integration
    catalog: Catalog
    host: SettingsHost
    health: IntegrationHealth | None

    def view(
        self,
        shown: dict[str, Any],
        secrets_set: frozenset[str],
        in_force: B24Settings,
        errors: dict[str, LocalizedText],
        store: StoredSettings | None,
        notes: dict[str, LocalizedText] | None = None,
    ) -> SettingsView:
        """``shown``: the settings JSON the fields display; ``in_force``: what derived describes."""
        urls = {
            "webhook_url": self.host.urls.webhook(self.integration),
            "redirect_url": self.host.urls.oauth_redirect(),
        }
        values = {
            name: (MASK if name in secrets_set else None)
            if name in SECRET_KEYS
            else shown.get(name)
            for name, _ in FIELDS
        }
        portal_url = in_force.portal_url
        connection = connection_of(self.integration)
        script = (
            render_site_script(
                endpoint=self.host.urls.session_report(self.integration.id),
                getter=in_force.tracker_getter,
                language=self.host.language,
                code_endpoint=self.host.urls.messenger_code(self.integration.id),
                links=in_force.messenger_links(),
            )
            if store is not None or self.integration.settings
            else None
        )
        authorize_url = (
            f"{portal_url}/oauth/authorize/?{urlencode({'client_id': in_force.client_id})}"
            if portal_url and in_force.client_id
            else None
        )
        return SettingsView(
            sections=[
                self._section(spec, shown, secrets_set, urls, in_force) for spec in _SECTIONS
            ],
            values=values,
            errors=errors,
            notes=notes or {},
            store=store,
            derived=DerivedValues(
                webhook_url=urls["webhook_url"],
                redirect_url=urls["redirect_url"],
                authorize_url=authorize_url,
                portal_url=portal_url,
                status=self._status(
                    in_force, "client_secret" in secrets_set, portal_url, connection
                ),
                progress=_import_progress(connection),
                site_script=script,
                site_script_note=None if script else texts.SCRIPT_AFTER_SAVING,
            ),
        )

    def _section(
        self,
        spec: _Section,
        shown: dict[str, Any],
        secrets_set: frozenset[str],
        urls: dict[str, str],
        in_force: B24Settings,
    ) -> FormSection:
        fields: list[FormField] = []
        for name, meta in FIELDS:
            if meta.section != spec.id:
                continue
            if meta.kind == "table":
                fields.extend(self._rows(shown))
            else:
                is_set = name in secrets_set
                fields.append(self._field(name, meta, shown.get(name), shown, is_set=is_set))
        help_ = spec.text.help
        help_text = help_ and fill(help_, **urls)
        if spec.id == "messenger_links" and help_text is not None:
            help_text = join([help_text, self._links_figures(in_force)], " ")
        return FormSection(
            id=spec.id, title=spec.text.title, help=help_text, layout=spec.layout, fields=fields
        )

    def _links_figures(self, settings: B24Settings) -> LocalizedText:
        """What the links brought in the last 7 days, per channel switched on: clicks, and
        chats that arrived with a code (the gap between them is the loss)."""
        channels = [link.channel for link in settings.messenger_links()]
        if not channels:
            return texts.LINKS_NONE_ON
        figures = self.health.messenger_links if self.health is not None else {}
        lines = []
        for channel in channels:
            found = figures.get(channel) or MessengerLinkFigures()
            lines.append(texts.link_figures(texts.CHANNELS[channel], found.clicks, found.chats))
        return texts.links_week(lines)

    def _rows(self, shown: dict[str, Any]) -> list[FormField]:
        """One row per known connector, then any custom connector the settings already map."""
        rows = shown.get("messenger_map")
        rows = rows if isinstance(rows, dict) else {}
        custom = [
            c for c in rows if c not in KNOWN_CONNECTORS and CONNECTOR_ID_PATTERN.fullmatch(c)
        ]
        fields = []
        for connector in [c.id for c in CONNECTORS] + custom:
            row = rows.get(connector)
            row = row if isinstance(row, dict) else {}
            for name, meta in ROW_FIELDS:
                key = f"messenger_map.{connector}.{name}"
                field = self._field(key, meta, row.get(name), shown, is_set=False)
                fields.append(field.model_copy(update={"row": connector_label(connector)}))
        return fields

    def _field(
        self,
        key: str,
        meta: FormMeta,
        value: Any,
        shown: dict[str, Any],
        *,
        is_set: bool,
    ) -> FormField:
        """One input; ``shown`` (the whole settings JSON) decides whether it is required."""
        kind = meta.kind
        if kind == "table":
            raise TypeError(f"{key}: a table expands into rows, it is not one input")
        if kind == "secret":
            shown_value: str | bool | None = None
        elif kind == "checkbox":
            shown_value = _truthy(value)
        else:
            shown_value = None if value is None else str(value)
        required = (
            meta.required_when_active
            and _truthy(shown.get("active"))
            and is_shown(meta, shown)
            and not (kind == "secret" and is_set)
        ) or (meta.required_with is not None and _truthy(shown.get(meta.required_with)))
        return FormField(
            key=key,
            kind=kind,
            label=meta.label,
            help=meta.help,
            value=shown_value,
            is_set=is_set,
            required=required,
            choices=self._choices(meta),
            show_when=meta.show_when,
            row=None,
        )

    def _choices(self, meta: FormMeta) -> list[Choice]:
        if meta.options:
            return [Choice(value=value, label=label) for value, label in meta.options]
        if meta.catalog is None:
            return []
        empty = [Choice(value="", label=meta.empty_choice)] if meta.empty_choice else []
        items = catalog_items(self.catalog, meta.catalog)
        return empty + [Choice(value=str(id_), label=same(name)) for id_, name in items]

    def _status(
        self,
        settings: B24Settings,
        has_client_secret: bool,
        portal_url: str | None,
        connection: Connection,
    ) -> Status:
        if not settings.active:
            return Status(level="off", text=texts.OFF)
        problems = rule_problems(settings, self.catalog, has_client_secret)
        missing = _labels(p.key for p in problems if p.missing)
        if missing:
            return Status(level="warning", text=texts.fill_in(missing))
        wrong = _labels(p.key for p in problems)
        if wrong:
            return Status(level="warning", text=texts.fix(wrong))
        if not connection.member_id and connection.problem is not None:
            return error_status(problem_text(connection.problem.code))  # connecting failed
        if not connection.member_id:
            return Status(level="warning", text=texts.NOT_CONNECTED)
        settings_host = urlsplit(portal_url).netloc if portal_url else None
        broken = health_status(connection, settings_host, self.health)
        if broken is not None:
            return broken
        domain = connection.domain or urlsplit(portal_url or "").hostname or ""
        granted = connection.scope if connection.scope is not None else list(REQUIRED_SCOPES)
        missing_scopes = [scope for scope in REQUIRED_SCOPES if scope not in granted]
        if missing_scopes:
            return Status(
                level="warning", text=texts.missing_scopes(domain, ", ".join(missing_scopes))
            )
        return Status(level="ok", text=texts.connected(domain))


def _import_progress(connection: Connection) -> LocalizedText | None:
    """How far the import of the chats before connecting got, while the portal is connected."""
    history = connection.catchup.history if connection.catchup else None
    if history is None or not connection.connected:
        return None
    days = round((history.until - history.since).total_seconds() / 86400)
    if history.done:
        return texts.imported(days, history.seen)
    return texts.importing(days, history.seen, history.total)


def _labels(keys: Iterable[str]) -> list[LocalizedText]:
    """The labels of the top-level fields behind some dotted keys, each once, in page order."""
    tops = {key.split(".")[0] for key in keys}
    return [meta.label for name, meta in FIELDS if name in tops]


def _truthy(value: Any) -> bool:
    """A checkbox's state from a bool or a form string ("on", "true", "1"); unreadable is off."""
    try:
        return _BOOL.validate_python(value) if value is not None else False
    except ValidationError:
        return False
