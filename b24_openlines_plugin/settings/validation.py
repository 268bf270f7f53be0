"""A submission checked in two passes, and the stored settings read back for the runtime.

1. the model parses each value on its own: types, formats, the portal address;
2. ``rule_problems`` checks what needs the whole picture: what an active integration
   requires, what a switch needs when on (the Telegram bot of Telegram links), ids that exist
   in the account's catalog, messenger rows that follow the traffic type.

As in a Django form, the second pass also runs when the first found errors, over the values
that did parse, so the client sees every problem at once instead of one per attempt.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, NamedTuple, get_args

from pydantic import SecretStr, ValidationError
from pydantic_core import ErrorDetails

from b24_openlines_plugin.settings import texts
from b24_openlines_plugin.settings.model import (
    ERROR_TYPE,
    FIELDS,
    ROW_FIELDS,
    SECRET_KEYS,
    B24Settings,
    CatalogList,
    FormMeta,
    clean,
)
from hooks.models import Catalog, Integration, LocalizedText


def _error_key(loc: tuple[int | str, ...]) -> str:
    # A bad dict key is reported at (..., "<key>", "[key]"): the key itself is the field.
    parts = [str(part) for part in loc if part != "[key]"]
    return ".".join(parts)


def _message(error: ErrorDetails) -> LocalizedText:
    ctx = error.get("ctx") or {}
    if error["type"] == ERROR_TYPE:
        return LocalizedText(ru=str(ctx["ru"]), en=str(ctx["en"]))
    if error["type"] == "literal_error":
        return texts.allowed_values(ctx.get("expected", ""))
    return texts.PYDANTIC_ERRORS.get(error["type"]) or texts.invalid_value(error["msg"])


def parse(
    data: Mapping[str, Any],
) -> tuple[B24Settings, dict[str, LocalizedText], dict[tuple[str, ...], Any]]:
    """Validate; what fails is dropped and the rest validated again, so rules can still run.

    Returns the settings that parsed, the errors by dotted key, and the dropped raw values by
    path (a top-level key, or one messenger row) so the form can show what was typed.
    """
    remaining: dict[str, Any] = clean(data)
    errors: dict[str, LocalizedText] = {}
    dropped: dict[tuple[str, ...], Any] = {}
    while True:
        try:
            return B24Settings.model_validate(remaining), errors, dropped
        except ValidationError as exc:
            progressed = False
            for error in exc.errors():
                errors.setdefault(_error_key(error["loc"]), _message(error))
                path = tuple(str(part) for part in error["loc"][:2])
                path = path if path[0] == "messenger_map" and len(path) == 2 else path[:1]
                parent = remaining.get(path[0]) if len(path) == 2 else remaining
                if isinstance(parent, dict) and path[-1] in parent:
                    dropped[path] = parent.pop(path[-1])
                    progressed = True
            if not progressed:  # nothing left to drop: never loop forever
                return B24Settings(), errors, dropped


class Problem(NamedTuple):
    key: str
    text: LocalizedText
    missing: bool = False


def catalog_items(catalog: Catalog, which: CatalogList) -> list[tuple[int, str]]:
    """(id, label) of one catalog list: the select's choices and the ids a field may hold."""
    if which == "employees":
        return [(item.id, item.name) for item in catalog.employees]
    if which == "sources":
        return [(item.id, item.name) for item in catalog.sources]
    if which == "sites":
        return [(item.id, f"{item.name} ({item.domain})") for item in catalog.sites]
    return [(item.id, item.name) for item in catalog.campaigns]


def is_shown(meta: FormMeta, values: Mapping[str, Any]) -> bool:
    when = meta.show_when
    return when is None or str(values.get(when.key)) == when.equals


def rule_problems(
    settings: B24Settings, catalog: Catalog, has_client_secret: bool
) -> list[Problem]:
    """The rules that need more than one value, or the catalog."""
    known = {
        which: {id_ for id_, _ in catalog_items(catalog, which)} for which in get_args(CatalogList)
    }
    values = {"traffic_type": settings.traffic_type}
    problems: list[Problem] = []
    for name, meta in FIELDS:
        value = getattr(settings, name)
        given = has_client_secret if name == "client_secret" else value is not None
        if settings.active and meta.required_when_active and is_shown(meta, values) and not given:
            problems.append(Problem(name, texts.REQUIRED, missing=True))
        elif meta.required_with and getattr(settings, meta.required_with) and not given:
            problems.append(Problem(name, texts.TELEGRAM_BOT_REQUIRED, missing=True))
        elif meta.catalog and value is not None and value not in known[meta.catalog]:
            problems.append(Problem(name, texts.NOT_IN_CATALOG[meta.catalog]))
    for connector, row in settings.messenger_map.items():
        for name, meta in ROW_FIELDS:
            value = getattr(row, name)
            key = f"messenger_map.{connector}.{name}"
            if value is None:
                continue
            if not is_shown(meta, values):
                problems.append(Problem(key, texts.WRONG_TRAFFIC_TYPE[settings.traffic_type]))
            elif meta.catalog and value not in known[meta.catalog]:
                problems.append(Problem(key, texts.NOT_IN_CATALOG[meta.catalog]))
        if settings.traffic_type == "source" and row.site_id is not None and row.source_id is None:
            problems.append(
                Problem(f"messenger_map.{connector}.source_id", texts.SITE_WITHOUT_SOURCE)
            )
    return problems


class _Parsed(NamedTuple):
    settings: dict[str, Any]
    secrets: dict[str, SecretStr]
    parsed: B24Settings


# The last settings parsed per integration: a drain hands the same settings to every one of its
# deliveries, and parsing them (pydantic, portal rules) costs more than the rest of a webhook's
# checks. Kept by value, so equal settings under another object still hit, changed ones miss.
_parsed: dict[int, _Parsed] = {}


def stored_settings(integration: Integration) -> B24Settings:
    """The settings in force, secrets included, for the parts of the plugin that act on them."""
    cached = _parsed.get(integration.id)
    if (
        cached is not None
        and cached.settings == integration.settings
        and cached.secrets == integration.secrets
    ):
        return cached.parsed
    settings, _, _ = parse(without_secrets(integration.settings))
    secrets = {key: integration.secrets[key] for key in SECRET_KEYS if key in integration.secrets}
    parsed = settings.model_copy(update=secrets)
    _parsed[integration.id] = _Parsed(
        copy.deepcopy(integration.settings), dict(integration.secrets), parsed
    )
    return parsed


def without_secrets(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key not in SECRET_KEYS}
