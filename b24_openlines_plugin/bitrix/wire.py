"""Bitrix24's wire formats, read into ``records`` (pydantic) and handed back, or ``WireError``.

This is the only module that reads Bitrix24's payloads: form-encoded event bodies with PHP
bracket keys, and the REST answers' records, which ``records`` models read through their wire
aliases and validators (UPPERCASE keys, numbers as strings, PHP's empty array ``[]`` where an
object is expected, ``Y``/``N`` flags). Every public function returns ``records`` objects or
raises ``WireError``, whose message names fields and rules, never values.

Payloads grow new keys over time, so unknown keys are ignored and only what the plugin reads
is required.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from pydantic import ValidationError

from .records import (
    WIRE,
    Activity,
    ActivityBinding,
    ChatRef,
    CrmEntity,
    Dialog,
    ErrorBody,
    Event,
    EventHandler,
    ListPage,
    OfflinePage,
    Record,
    SessionHistory,
    TokenGrant,
    php_list,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_EVENT_DEPTH",
    "MAX_EVENT_FIELDS",
    "MAX_EVENT_KEY_CHARS",
    "MAX_EVENT_VALUE_CHARS",
    "WireError",
    "form_encode",
    "parse_activities",
    "parse_activity_bindings",
    "parse_crm_chats",
    "parse_crm_entity",
    "parse_dialog",
    "parse_error",
    "parse_event",
    "parse_event_handlers",
    "parse_list_page",
    "parse_offline_page",
    "parse_session_history",
    "parse_token_grant",
]

# Events come from the internet before anything is verified, so their size is bounded.
MAX_EVENT_BYTES = 65_536
MAX_EVENT_FIELDS = 100
MAX_EVENT_DEPTH = 5  # data[FIELDS][ID] is 3
MAX_EVENT_VALUE_CHARS = 2_000
MAX_EVENT_KEY_CHARS = 200
_MAX_REPORTED_ERRORS = 5

_R = TypeVar("_R", bound=Record)


class WireError(ValueError):
    """A payload that is not in the expected Bitrix24 format.

    The message names fields and rules only, never values, so it is safe to log and show
    (values may be tokens).
    """


# --- reading records ------------------------------------------------------------------------

# pydantic's own messages for the errors its types raise (the records' own are of type
# "wire"); none of them quotes the value.
_MESSAGES = {
    "missing": "Missing data for required field.",
    "model_type": "Not an object.",
    "model_attributes_type": "Not an object.",
    "dict_type": "Not a valid mapping type.",
    "list_type": "Not a list.",
}


def _describe(error: ValidationError) -> str:
    """pydantic's errors as ``auth.member_id: Missing data for required field.; ...``: the
    path of wire keys (list places by number) and the rule, never the value."""
    found: list[str] = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"]) or "body"
        rule = item["msg"] if item["type"] == "wire" else _MESSAGES.get(item["type"], "Invalid.")
        line = f"{path}: {rule}"
        if line not in found:  # fields read from the same key fail alike
            found.append(line)
    return "; ".join(found[:_MAX_REPORTED_ERRORS])


def _read(model: type[_R], payload: Mapping[str, Any], what: str) -> _R:
    """A record from its wire keys (unknown keys ignored), or a value-free WireError."""
    try:
        return model.model_validate(
            payload, by_alias=True, by_name=False, extra="ignore", context=WIRE
        )
    except ValidationError as error:
        raise WireError(f"{what}: {_describe(error)}") from None


def _mapping(payload: object, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise WireError(f"{what} is not an object")
    return payload


def _read_rows(model: type[_R], payload: object, what: str) -> list[_R]:
    rows = php_list(payload)
    if rows is None:
        raise WireError(f"{what} is not a list")
    records = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise WireError(f"{what} row {index} is not an object")
        try:
            records.append(
                model.model_validate(
                    row, by_alias=True, by_name=False, extra="ignore", context=WIRE
                )
            )
        except ValidationError as error:
            raise WireError(f"{what} row {index}: {_describe(error)}") from None
    return records


# --- events ---------------------------------------------------------------------------------


_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]+)\]")


def _split_key(key: str) -> tuple[str, ...]:
    """``data[FIELDS][ID]`` → ``("data", "FIELDS", "ID")``; PHP's ``[]`` (append) is refused."""
    if len(key) > MAX_EVENT_KEY_CHARS:
        raise WireError("event body has a malformed or overlong key")
    return _split_bounded_key(key)


@functools.lru_cache(maxsize=256)  # the same keys come with every event
def _split_bounded_key(key: str) -> tuple[str, ...]:
    match = _KEY.fullmatch(key)
    if match is None:
        raise WireError("event body has a malformed or overlong key")
    segments = (match.group(1), *_SEGMENT.findall(match.group(2)))
    if len(segments) > MAX_EVENT_DEPTH:
        raise WireError(f"event body has a key nested deeper than {MAX_EVENT_DEPTH} levels")
    return segments


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """PHP bracket keys → nested dicts, refusing a key that is both a value and a group."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *branches, leaf = _split_key(key)
        node = tree
        for name in branches:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise WireError("event body has a key that is both a value and a group")
        if leaf in node:
            raise WireError("event body has a key that is both a value and a group")
        node[leaf] = value
    return tree


def _check_tree(tree: object) -> None:
    """Bound an event tree (form or JSON): depth, number of values, length of each string."""
    for count, leaf in enumerate(_leaves(tree, 0), start=1):
        if count > MAX_EVENT_FIELDS:
            raise WireError(f"event body has more than {MAX_EVENT_FIELDS} fields")
        if isinstance(leaf, str) and len(leaf) > MAX_EVENT_VALUE_CHARS:
            raise WireError(f"event body has a value longer than {MAX_EVENT_VALUE_CHARS} chars")


def _leaves(tree: object, depth: int) -> Iterator[object]:
    children: list[object]
    if isinstance(tree, Mapping):
        if any(len(str(key)) > MAX_EVENT_KEY_CHARS for key in tree):
            raise WireError("event body has an overlong key")
        children = list(tree.values())
    elif isinstance(tree, list):
        children = tree
    else:
        yield tree
        return
    if children and depth >= MAX_EVENT_DEPTH:
        raise WireError(f"event body nests deeper than {MAX_EVENT_DEPTH} levels")
    for child in children:
        yield from _leaves(child, depth + 1)


def _decode_body(body: bytes) -> str:
    if not isinstance(body, bytes | bytearray):
        raise WireError("event body is not bytes")
    if len(body) > MAX_EVENT_BYTES:
        raise WireError(f"event body is larger than {MAX_EVENT_BYTES} bytes")
    try:
        text = bytes(body).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise WireError("event body is not UTF-8") from None
    if not text:
        raise WireError("event body is empty")
    return text


_NOT_A_FORM = (
    f"event body is not a form (or has more than {MAX_EVENT_FIELDS} fields, "
    "or a %-escape that is not UTF-8)"
)


def _form_fields(text: str) -> dict[str, str]:
    """The fields of a form body as ``parse_qsl(text, keep_blank_values=True,
    strict_parsing=True, errors="strict", max_num_fields=MAX_EVENT_FIELDS)`` reads them, at a
    fraction of its cost: every webhook is one, and its keys are the same each time."""
    if text.count("&") >= MAX_EVENT_FIELDS:
        raise WireError(_NOT_A_FORM)
    flat: dict[str, str] = {}
    fields = text.split("&")
    try:
        for field in fields:
            key, equals, value = field.partition("=")
            if not equals:
                raise WireError(_NOT_A_FORM)
            flat[_unescape(key)] = _unescape(value)
    except UnicodeDecodeError:  # a %-escape that is not UTF-8
        raise WireError(_NOT_A_FORM) from None
    if len(flat) != len(fields):
        raise WireError("event body repeats a key")
    return flat


_CACHED_CHARS = 3 * MAX_EVENT_KEY_CHARS


def _unescape(text: str) -> str:
    """A form's ``+`` and ``%XX``; the escaped texts of every event of a portal are the same
    (its keys, domain and endpoints), so those are cached."""
    if "%" not in text and "+" not in text:
        return text
    return _unescape_cached(text) if len(text) <= _CACHED_CHARS else _unescape_text(text)


def _unescape_text(text: str) -> str:
    return unquote(text.replace("+", " "), errors="strict")


_unescape_cached = functools.lru_cache(maxsize=256)(_unescape_text)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise WireError("event body repeats a key")
    return result


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except WireError:
        raise
    except (ValueError, RecursionError):
        raise WireError("event body is not valid JSON") from None
    if not isinstance(value, dict):
        raise WireError("event body is JSON but not an object")
    return value


def parse_event(body: bytes) -> Event:
    """An event delivery, as posted to the webhook URL.

    The real format is ``application/x-www-form-urlencoded`` with PHP bracket keys
    (``data[FIELDS][ID]``, ``auth[application_token]``). A JSON object is accepted too,
    because the docs show events as JSON and some relays re-encode them. Nothing here is
    verified: the caller must still compare ``auth.application_token`` and ``member_id``.
    """
    text = _decode_body(body)
    if text[0] in "{[":
        tree = _json_object(text)
        _check_tree(tree)
    else:
        # A form's bounds are checked as it is read (its fields, and the depth and length of
        # each key, by _split_key); its values' length is all that is left.
        flat = _form_fields(text)
        tree = _unflatten(flat)
        if any(len(value) > MAX_EVENT_VALUE_CHARS for value in flat.values()):
            raise WireError(f"event body has a value longer than {MAX_EVENT_VALUE_CHARS} chars")
    return _read(Event, tree, "event")


# --- OAuth and errors -----------------------------------------------------------------------

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_token_grant(payload: Mapping[str, Any]) -> TokenGrant:
    """An OAuth server's token answer (authorization code or refresh)."""
    error = parse_error(payload)
    if error is not None:
        code = error.error if _ERROR_CODE.fullmatch(error.error) else "unrecognised"
        raise WireError(f"the OAuth server answered with an error ({code})")
    return _read(TokenGrant, _mapping(payload, "token answer"), "token answer")


def parse_error(payload: object) -> ErrorBody | None:
    """The ``{"error", "error_description"}`` body of the REST API or the OAuth server.

    None when the payload is not an error body; WireError when it has an ``error`` key of
    the wrong shape.
    """
    if not isinstance(payload, Mapping) or "error" not in payload:
        return None
    if payload["error"] is None:
        return None
    return _read(ErrorBody, payload, "error answer")


# --- CRM ------------------------------------------------------------------------------------


def parse_crm_entity(payload: Mapping[str, Any]) -> CrmEntity:
    """The ``result`` of ``crm.lead.get``, ``crm.deal.get`` or ``crm.contact.get``."""
    return _read(CrmEntity, _mapping(payload, "CRM record"), "CRM record")


def parse_crm_chats(payload: object) -> list[ChatRef]:
    """The ``result`` of ``imopenlines.crm.chat.get``: the CRM object's chats (may be ``[]``)."""
    return _read_rows(ChatRef, payload, "chat list")


def parse_dialog(payload: Mapping[str, Any]) -> Dialog:
    """The ``result`` of ``imopenlines.dialog.get``: the operator chat and its current session."""
    dialog = _mapping(payload, "dialog")
    kind = dialog.get("entity_type")
    if kind is not None and kind != "LINES":  # an Open Lines chat, not a group chat
        raise WireError("dialog: entity_type: Must be equal to LINES.")
    return _read(Dialog, dialog, "dialog")


# --- transcript -----------------------------------------------------------------------------


def parse_session_history(payload: Mapping[str, Any]) -> SessionHistory:
    """The ``result`` of ``imopenlines.session.history.get``, messages oldest first.

    Bitrix24 sends ``message`` and ``users`` as objects keyed by id (``[]`` when empty) and
    the operator chat's user code as ``chat[<chatId>].entityId``; author 0 is the system.
    """
    return _read(SessionHistory, _mapping(payload, "history"), "history")


# --- activities and pages -------------------------------------------------------------------


def parse_activities(payload: object) -> list[Activity]:
    """The ``result`` rows of ``crm.activity.list`` (select ``COMPLETED`` and ``PROVIDER_*``).

    ``session_id`` is set only for Open Lines activities (provider ``IMOPENLINES_SESSION``).
    """
    return _read_rows(Activity, payload, "activity list")


def parse_activity_bindings(payload: object) -> list[ActivityBinding]:
    """The ``result`` of ``crm.activity.binding.list``: ``[{entityTypeId, entityId}, ...]``."""
    return _read_rows(ActivityBinding, payload, "activity bindings")


def parse_list_page(payload: Mapping[str, Any]) -> ListPage:
    """``next`` and ``total`` of a list method's whole answer (not of its ``result``)."""
    return _read(ListPage, _mapping(payload, "list answer"), "list answer")


# --- the event queue: event.get and event.offline.get ---------------------------------------


def parse_offline_page(payload: object) -> OfflinePage:
    """The ``result`` of ``event.offline.get``: ``{process_id, events: [...]}``."""
    if payload is None or payload == []:  # an empty queue may come as an empty array
        return OfflinePage(process_id=None, events=[])
    return _read(OfflinePage, _mapping(payload, "offline events"), "offline events")


def parse_event_handlers(payload: object) -> list[EventHandler]:
    """The ``result`` of ``event.get``: the handlers bound by this application."""
    return _read_rows(EventHandler, payload, "event handlers")


# --- writing --------------------------------------------------------------------------------

_KEY_SAFE = "!<>@*"  # filter prefixes stay readable; "=" and "%" must be escaped
_VALUE_SAFE = "$[]*,:|/@!<>"  # batch references like $result[cmd][ID] stay readable


def form_encode(params: Mapping[str, object]) -> str:
    """Nested params → a PHP bracket query string, as in ``batch`` commands.

    ``{"filter": {">ID": 5}, "select": ["ID"]}`` → ``filter[>ID]=5&select[0]=ID``.
    Values are written as given: a bool becomes ``1``/``0`` like PHP's
    ``http_build_query``, never ``Y``/``N``, so pass Bitrix24 flags as ``"Y"``/``"N"``.
    ``None`` and empty lists or dicts are refused rather than dropped, because a filter
    that silently vanishes would select everything.
    """
    out: list[str] = []
    for key, value in params.items():
        _encode_into(out, _quote_key(key), value)
    return "&".join(out)


# What ``quote`` leaves as it is with those safe characters: most keys and values of a command
# (field names, ids, batch references), written without its cost.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.~!<>@*-]+")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.~$\[\]*,:|/@!<>-]*")


def _encode_into(out: list[str], name: str, value: object) -> None:
    if isinstance(value, str):
        text = value if _PLAIN_VALUE.fullmatch(value) else quote(value, safe=_VALUE_SAFE)
        out.append(f"{name}={text}")
        return
    items: list[tuple[object, object]]
    if isinstance(value, dict | Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    else:
        out.append(f"{name}={_scalar(value)}")
        return
    if not items:
        raise WireError(f"{name}: an empty list or dict cannot be form-encoded")
    for key, item in items:
        _encode_into(out, f"{name}[{_quote_key(key)}]", item)


def _quote_key(key: object) -> str:
    if type(key) is int:
        return str(key)
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return key
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise WireError("form keys must be strings or integers")
    text = str(key)
    if not text or "[" in text or "]" in text:
        raise WireError("form keys must be non-empty and free of brackets")
    return quote(text, safe=_KEY_SAFE)


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return quote(value, safe=_VALUE_SAFE)
    raise WireError(f"cannot form-encode a value of type {type(value).__name__}")
