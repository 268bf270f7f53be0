"""Bitrix24's wire formats, read with marshmallow and handed back as ``records`` (pydantic).

This is the only module that knows how Bitrix24 spells things: form-encoded event bodies
with PHP bracket keys, UPPERCASE REST records whose numbers are strings, PHP's empty array
``[]`` where an object is expected, ``Y``/``N`` flags. Nothing marshmallow leaves this
module: every public function returns ``records`` objects or raises ``WireError``.

Payloads grow new keys over time, so every schema ignores unknown keys (``EXCLUDE``) and
requires only what the plugin reads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, quote

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate
from marshmallow.types import Validator

from .records import (
    SESSION_PROVIDER,
    Activity,
    ActivityBinding,
    ChatRef,
    CrmEntity,
    Dialog,
    ErrorBody,
    Event,
    EventAuth,
    EventHandler,
    HistoryMessage,
    HistoryUser,
    ListPage,
    Multifield,
    OfflineEvent,
    OfflinePage,
    SessionHistory,
    TokenGrant,
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


_T = TypeVar("_T")


class WireError(ValueError):
    """A payload that is not in the expected Bitrix24 format.

    The message names fields and rules only, never values, so it is safe to log and show
    (values may be tokens).
    """


# --- fields: how Bitrix24 spells scalars ----------------------------------------------------

_DIGITS = re.compile(r"-?[0-9]{1,18}")


class _Int(fields.Field[int | None]):
    """An integer sent as a JSON number or a string of ASCII digits.

    Stricter than ``fields.Integer``, which would take ``1.9`` as 1 and ``" 7"`` or
    non-ASCII digits as numbers. With ``zero_is_none`` the reference ids Bitrix24 leaves
    unset (``""``, ``"0"``, ``null``) become None. ``minimum`` is checked here rather than by
    a validator object: every id of every answer passes through, and it is cheaper inline.
    """

    default_error_messages = {  # noqa: RUF012
        "invalid": "Not an integer.",
        "too_small": "Must be at least {minimum}.",
    }

    def __init__(
        self, *, zero_is_none: bool = False, minimum: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.zero_is_none = zero_is_none
        self.minimum = minimum

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int | None:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            number = int(value)
        elif isinstance(value, int) and abs(value) < 10**18:
            number = value
        elif self.zero_is_none and value == "":
            return None
        else:
            raise self.make_error("invalid")
        if self.zero_is_none and number == 0:
            return None  # unset: nothing to range-check
        if self.minimum is not None and number < self.minimum:
            raise self.make_error("too_small", minimum=self.minimum)
        return number


class _Text(fields.Field[str | None]):
    """A string; numbers are taken as their decimal text, ``blank_is_none`` maps ``""`` to None,
    ``not_blank`` refuses ``""`` (inline, like ``_Int``'s minimum), ``ascii_only`` refuses any other
    character: what Bitrix24 always spells in ASCII (ids, tokens) is compared in constant time,
    and ``hmac.compare_digest`` raises on non-ASCII text."""

    default_error_messages = {  # noqa: RUF012
        "invalid": "Not a string.",
        "blank": "Must not be empty.",
        "not_ascii": "Must be ASCII.",
    }

    def __init__(
        self,
        *,
        blank_is_none: bool = False,
        not_blank: bool = False,
        ascii_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.blank_is_none = blank_is_none
        self.not_blank = not_blank
        self.ascii_only = ascii_only

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if self.ascii_only and not value.isascii():
            raise self.make_error("not_ascii")
        if value == "":
            if self.blank_is_none:
                return None
            if self.not_blank:
                raise self.make_error("blank")
        return value

    def _validate(self, value: Any) -> None:
        if value is not None:
            super()._validate(value)


class _Flag(fields.Field[bool]):
    """A Bitrix24 flag: ``"Y"``/``"N"``, or a JSON boolean in the ``im`` module's answers."""

    default_error_messages = {"invalid": "Not Y or N."}  # noqa: RUF012

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bool:
        if value == "Y" or value is True:
            return True
        if value == "N" or value is False:
            return False
        raise self.make_error("invalid")


class _When(fields.Field[datetime | None]):
    """An ISO 8601 date-time with its offset; naive ones are refused, ``""`` means unset.

    Read with ``datetime.fromisoformat`` (every message of a transcript has one, and it is
    several times faster than a regular expression).
    """

    default_error_messages = {  # noqa: RUF012
        "invalid": "Not a valid ISO 8601 date-time.",
        "naive": "Not an aware date-time (it has no UTC offset).",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime | None:
        if value == "" and self.allow_none:
            return None
        if not isinstance(value, str) or "T" not in value:
            raise self.make_error("invalid")
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None
        if when.tzinfo is None:
            raise self.make_error("naive")
        return when


def _php_list(value: object) -> list[object] | None:
    """A PHP array as JSON: a list, or an object when its keys are not 0..n; None otherwise."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return list(value.values())
    return None


class _Rows(fields.Nested):
    """A list of records; a keyed PHP array is taken by its values. One ``load(many=True)``
    for all of them, which costs far less than a load per record."""

    default_error_messages = {"invalid": "Not a list of records."}  # noqa: RUF012

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(schema, many=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        rows = _php_list(value)
        if rows is None:
            raise self.make_error("invalid")
        return super()._deserialize(rows, attr, data, *args, **kwargs)


class _ChatCrmData(NamedTuple):
    session_id: int | None
    crm_entity_type: str | None
    crm_entity_id: int | None


class _EntityData1(fields.Field[_ChatCrmData]):
    """An Open Lines chat's ``entity_data_1``.

    ``CRM|CRM_ENTITY_TYPE|CRM_ENTITY_ID|PAUSE|WAIT_ACTION|SESSION_ID|DATE_CREATE|LINE_ID|...``;
    unset parts are ``NONE``, ``0`` or empty.
    """

    default_error_messages = {"invalid": "Not an Open Lines entity_data_1 string."}  # noqa: RUF012

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> _ChatCrmData:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        parts = value.split("|") + [""] * 6
        entity_type = parts[1] if parts[1] not in ("", "NONE") else None
        return _ChatCrmData(
            session_id=self._ref(parts[5]),
            crm_entity_type=entity_type,
            crm_entity_id=self._ref(parts[2]),
        )

    def _ref(self, part: str) -> int | None:
        if part == "":
            return None
        if not part.isascii() or not part.isdigit() or len(part) > 18:
            raise self.make_error("invalid")
        return int(part) or None


class _UserCode(fields.Field[str | None]):
    """``PROVIDER_PARAMS[USER_CODE]`` of an activity; other providers put anything there."""

    default_error_messages = {"invalid": "USER_CODE is not a string."}  # noqa: RUF012

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str | None:
        if not isinstance(value, Mapping):
            return None  # [] (PHP's empty array), null, or a provider's own shape
        code = value.get("USER_CODE")
        if code is None or code == "":
            return None
        if not isinstance(code, str):
            raise self.make_error("invalid")
        return code


class _Scope(fields.Field[list[str]]):
    """OAuth scope: ``"crm,im,imopenlines"`` (also taken as a list)."""

    default_error_messages = {"invalid": "Not a scope list."}  # noqa: RUF012

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> list[str]:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.make_error("invalid")
        return [item.strip() for item in value if item.strip()]


def _required_text(*checks: Validator, **kwargs: Any) -> _Text:
    return _Text(required=True, not_blank=True, validate=list(checks), **kwargs)


def _optional_text(**kwargs: Any) -> _Text:
    return _Text(load_default=None, blank_is_none=True, **kwargs)


def _endpoint(**kwargs: Any) -> _Text:
    """A REST/OAuth base URL; only http(s) (the sandbox portal is plain http on localhost)."""
    url = validate.URL(schemes={"http", "https"}, require_tld=False)
    return _Text(required=True, validate=url, **kwargs)


def _id(**kwargs: Any) -> _Int:
    return _Int(required=True, minimum=1, **kwargs)


def _ref_id(**kwargs: Any) -> _Int:
    return _Int(load_default=None, zero_is_none=True, minimum=1, **kwargs)


class _Wire(Schema):
    class Meta:
        unknown = EXCLUDE  # Bitrix24 adds keys over time; read only what we use


# --- events ---------------------------------------------------------------------------------


class _EventFieldsSchema(_Wire):
    id = _id(data_key="ID")


class _EventDataSchema(_Wire):
    entity = fields.Nested(_EventFieldsSchema, data_key="FIELDS", required=True)


class _EventAuthSchema(_Wire):
    """What Bitrix24 spells in ASCII is read as ASCII; the domain and the endpoints may name a
    portal by its Unicode address."""

    domain = _required_text(validate.Regexp(r"[^\s/@?#\\]+\Z"))
    client_endpoint = _endpoint()
    server_endpoint = _endpoint()
    member_id = _required_text(ascii_only=True)
    application_token = _required_text(ascii_only=True)
    access_token = _optional_text(ascii_only=True)
    refresh_token = _optional_text(ascii_only=True)
    expires_in = _Int(load_default=None, zero_is_none=True)
    scope = _optional_text(ascii_only=True)
    status = _optional_text(ascii_only=True)
    user_id = _ref_id()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> EventAuth:
        return EventAuth.model_construct(**data)


class _EventSchema(_Wire):
    """An event as a tree (the JSON view); ``_FormEventSchema`` unflattens the real form first."""

    event = _Text(required=True, validate=validate.Regexp(r"[A-Za-z][A-Za-z0-9_]{0,99}\Z"))
    event_handler_id = _optional_text(ascii_only=True)
    data = fields.Nested(_EventDataSchema, required=True)
    ts = _Int(required=True, minimum=0)
    auth = fields.Nested(_EventAuthSchema, required=True)

    @pre_load
    def _bounded_tree(self, data: Mapping[str, Any], **kwargs: Any) -> Mapping[str, Any]:
        tree = self._tree(data)
        _check_tree(tree)
        return tree

    def _tree(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        return data

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Event:
        return Event.model_construct(
            name=data["event"].upper(),
            handler_id=data["event_handler_id"],
            entity_id=data["data"]["entity"]["id"],
            ts=data["ts"],
            auth=data["auth"],
        )


class _FormEventSchema(_EventSchema):
    """An event as Bitrix24 posts it: flat ``auth[domain]``-style keys, string values."""

    def _tree(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        return _unflatten(data)


_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]+)\]")


def _split_key(key: str) -> list[str]:
    """``data[FIELDS][ID]`` → ``["data", "FIELDS", "ID"]``; PHP's ``[]`` (append) is refused."""
    match = _KEY.fullmatch(key) if len(key) <= MAX_EVENT_KEY_CHARS else None
    if match is None:
        raise WireError("event body has a malformed or overlong key")
    segments = [match.group(1), *_SEGMENT.findall(match.group(2))]
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


def _form_fields(text: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_EVENT_FIELDS,
        )
    except ValueError:  # also UnicodeDecodeError of a bad %-escape, and too many fields
        raise WireError(
            f"event body is not a form (or has more than {MAX_EVENT_FIELDS} fields, "
            "or a %-escape that is not UTF-8)"
        ) from None
    flat: dict[str, str] = {}
    for key, value in pairs:
        if key in flat:
            raise WireError("event body repeats a key")
        flat[key] = value
    return flat


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
        return _load(_EVENT, _json_object(text), "event", Event)
    return _load(_FORM_EVENT, _form_fields(text), "event", Event)


# --- OAuth and errors -----------------------------------------------------------------------


class _TokenGrantSchema(_Wire):
    access_token = _required_text()
    refresh_token = _required_text()
    expires_in = _Int(required=True, minimum=1)
    expires = _Int(load_default=None, zero_is_none=True)
    member_id = _required_text()
    client_endpoint = _endpoint()
    server_endpoint = _endpoint()
    domain = _required_text()
    scope = _Scope(required=True)
    status = _optional_text()
    user_id = _ref_id()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> TokenGrant:
        return TokenGrant.model_construct(**data)


class _ErrorSchema(_Wire):
    error = _Text(required=True)  # may be "" (crm.activity.list's "Parameter ... must be array.")
    description = _Text(data_key="error_description", load_default="", allow_none=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ErrorBody:
        return ErrorBody.model_construct(error=data["error"], description=data["description"] or "")


_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_token_grant(payload: Mapping[str, Any]) -> TokenGrant:
    """An OAuth server's token answer (authorization code or refresh)."""
    error = parse_error(payload)
    if error is not None:
        code = error.error if _ERROR_CODE.fullmatch(error.error) else "unrecognised"
        raise WireError(f"the OAuth server answered with an error ({code})")
    return _load(_TOKEN_GRANT, _mapping(payload, "token answer"), "token answer", TokenGrant)


def parse_error(payload: object) -> ErrorBody | None:
    """The ``{"error", "error_description"}`` body of the REST API or the OAuth server.

    None when the payload is not an error body; WireError when it has an ``error`` key of
    the wrong shape.
    """
    if not isinstance(payload, Mapping) or "error" not in payload:
        return None
    if payload["error"] is None:
        return None
    return _load(_ERROR, payload, "error answer", ErrorBody)


# --- CRM ------------------------------------------------------------------------------------


class _MultifieldSchema(_Wire):
    id = _ref_id(data_key="ID")
    type_id = _required_text(data_key="TYPE_ID")
    value_type = _Text(data_key="VALUE_TYPE", required=True)
    value = _Text(data_key="VALUE", required=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Multifield:
        return Multifield.model_construct(**data)


def _multifield(data_key: str) -> _Rows:
    return _Rows(_MultifieldSchema, data_key=data_key, load_default=list, allow_none=True)


class _CrmEntitySchema(_Wire):
    id = _id(data_key="ID")
    title = _optional_text(data_key="TITLE")
    name = _optional_text(data_key="NAME")
    second_name = _optional_text(data_key="SECOND_NAME")
    last_name = _optional_text(data_key="LAST_NAME")
    source_id = _optional_text(data_key="SOURCE_ID")
    date_create = _When(data_key="DATE_CREATE", required=True)
    contact_id = _ref_id(data_key="CONTACT_ID")
    assigned_by_id = _ref_id(data_key="ASSIGNED_BY_ID")
    phones = _multifield("PHONE")
    emails = _multifield("EMAIL")
    ims = _multifield("IM")
    utm_source = _optional_text(data_key="UTM_SOURCE")
    utm_medium = _optional_text(data_key="UTM_MEDIUM")
    utm_campaign = _optional_text(data_key="UTM_CAMPAIGN")
    utm_content = _optional_text(data_key="UTM_CONTENT")
    utm_term = _optional_text(data_key="UTM_TERM")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> CrmEntity:
        multi = {key: data[key] or [] for key in ("phones", "emails", "ims")}  # null is none
        return CrmEntity.model_construct(**{**data, **multi})


def parse_crm_entity(payload: Mapping[str, Any]) -> CrmEntity:
    """The ``result`` of ``crm.lead.get``, ``crm.deal.get`` or ``crm.contact.get``."""
    return _load(_CRM_ENTITY, _mapping(payload, "CRM record"), "CRM record", CrmEntity)


class _ChatRefSchema(_Wire):
    chat_id = _id(data_key="CHAT_ID")
    connector_id = _required_text(data_key="CONNECTOR_ID")
    connector_title = _optional_text(data_key="CONNECTOR_TITLE")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ChatRef:
        return ChatRef.model_construct(**data)


def parse_crm_chats(payload: object) -> list[ChatRef]:
    """The ``result`` of ``imopenlines.crm.chat.get``: the CRM object's chats (may be ``[]``)."""
    return _load_rows(_CHAT_REF, payload, "chat list", ChatRef)


class _DialogSchema(_Wire):
    chat_id = _id(data_key="id")
    user_code = _required_text(data_key="entity_id")
    entity_type = _Text(load_default=None, validate=validate.Equal("LINES"))
    crm = _EntityData1(data_key="entity_data_1", load_default=None, allow_none=True)
    date_create = _When(load_default=None)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Dialog:
        crm: _ChatCrmData = data["crm"] or _ChatCrmData(None, None, None)
        return Dialog.model_construct(
            chat_id=data["chat_id"],
            user_code=data["user_code"],
            session_id=crm.session_id,
            crm_entity_type=crm.crm_entity_type,
            crm_entity_id=crm.crm_entity_id,
            date_create=data["date_create"],
        )


def parse_dialog(payload: Mapping[str, Any]) -> Dialog:
    """The ``result`` of ``imopenlines.dialog.get``: the operator chat and its current session."""
    return _load(_DIALOG, _mapping(payload, "dialog"), "dialog", Dialog)


# --- transcript -----------------------------------------------------------------------------


class _HistoryMessageSchema(_Wire):
    id = _id()
    author_id = _Int(data_key="senderid", required=True, minimum=0)
    date = _When(required=True)
    text = _Text(load_default="", allow_none=True)
    params = fields.Raw(load_default=None, allow_none=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> HistoryMessage:
        blocks = _attach_blocks(data.pop("params"))
        return HistoryMessage.model_construct(
            **{
                **data,
                "text": data["text"] or "",
                "attachments": [text for block in blocks for text in _block_texts(block)],
                "attach_messages": [
                    block["message"] for block in blocks if isinstance(block.get("message"), str)
                ],
            }
        )


def _attach_blocks(params: object) -> list[dict[str, Any]]:
    """The blocks of a message's attach, in order: the live-chat widget's custom data arrives
    as such blocks (of a system message), and so do forms' answers."""
    attach = params.get("attach") if isinstance(params, dict) else None
    blocks: list[dict[str, Any]] = []
    for item in _php_list(attach) or []:
        found = item.get("blocks") if isinstance(item, dict) else None
        blocks += [block for block in _php_list(found) or [] if isinstance(block, dict)]
    return blocks


def _block_texts(block: Mapping[str, Any]) -> list[str]:
    """The words of a block for the transcript: a ``message``, and grid rows as name: value."""
    texts = [block["message"]] if isinstance(block.get("message"), str) else []
    for row in _php_list(block.get("grid")) or []:
        if isinstance(row, dict) and isinstance(row.get("value"), str | int):
            texts.append(f"{row.get('name') or ''}: {row['value']}".strip(": "))
    return texts


class _HistoryUserSchema(_Wire):
    id = _id()
    name = _Text(load_default="", allow_none=True)
    is_connector = _Flag(data_key="connector", load_default=False)
    is_bot = _Flag(data_key="bot", load_default=False)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> HistoryUser:
        return HistoryUser.model_construct(**{**data, "name": data["name"] or ""})


class _HistoryChatSchema(_Wire):
    user_code = _optional_text(data_key="entityId")


def _keyed(schema: type[Schema], data_key: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(), values=fields.Nested(schema), data_key=data_key, load_default=dict
    )


class _SessionHistorySchema(_Wire):
    chat_id = _id(data_key="chatId")
    session_id = _id(data_key="sessionId")
    messages = _Rows(_HistoryMessageSchema, data_key="message", load_default=list)
    users = _Rows(_HistoryUserSchema, data_key="users", load_default=list)
    chats = _keyed(_HistoryChatSchema, "chat")

    @pre_load
    def _php_empty_maps(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """PHP encodes an empty keyed array as ``[]``, and absent as ``null`` at times."""
        keys = ("message", "users", "chat")
        empty: dict[str, Any] = {key: {} for key in keys if data.get(key) in ([], None)}
        return {**data, **empty}

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> SessionHistory:
        messages: list[HistoryMessage] = data["messages"]
        users: list[HistoryUser] = data["users"]
        chat = data["chats"].get(str(data["chat_id"]), {})
        return SessionHistory.model_construct(
            chat_id=data["chat_id"],
            session_id=data["session_id"],
            user_code=chat.get("user_code"),
            messages=sorted(messages, key=lambda message: message.id),
            users={user.id: user for user in users},
        )


def parse_session_history(payload: Mapping[str, Any]) -> SessionHistory:
    """The ``result`` of ``imopenlines.session.history.get``, messages oldest first.

    Bitrix24 sends ``message`` and ``users`` as objects keyed by id (``[]`` when empty) and
    the operator chat's user code as ``chat[<chatId>].entityId``; author 0 is the system.
    """
    return _load(_SESSION_HISTORY, _mapping(payload, "history"), "history", SessionHistory)


# --- activities and pages -------------------------------------------------------------------


class _ActivitySchema(_Wire):
    id = _id(data_key="ID")
    provider_id = _optional_text(data_key="PROVIDER_ID")
    owner_type_id = _ref_id(data_key="OWNER_TYPE_ID")
    owner_id = _ref_id(data_key="OWNER_ID")
    associated_entity_id = _ref_id(data_key="ASSOCIATED_ENTITY_ID")
    connector_id = _optional_text(data_key="RESULT_SOURCE_ID")
    user_code = _UserCode(data_key="PROVIDER_PARAMS", load_default=None)
    completed = _Flag(data_key="COMPLETED", required=True)
    created = _When(data_key="CREATED", load_default=None)
    last_updated = _When(data_key="LAST_UPDATED", load_default=None)
    end_time = _When(data_key="END_TIME", load_default=None)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Activity:
        # ASSOCIATED_ENTITY_ID is a session only for Open Lines; for a call it is the call.
        associated = data.pop("associated_entity_id")
        session_id = associated if data["provider_id"] == SESSION_PROVIDER else None
        return Activity.model_construct(**data, session_id=session_id)


def parse_activities(payload: object) -> list[Activity]:
    """The ``result`` rows of ``crm.activity.list`` (select ``COMPLETED`` and ``PROVIDER_*``).

    ``session_id`` is set only for Open Lines activities (provider ``IMOPENLINES_SESSION``).
    """
    return _load_rows(_ACTIVITY, payload, "activity list", Activity)


class _ActivityBindingSchema(_Wire):
    owner_type_id = _id(data_key="entityTypeId")
    owner_id = _id(data_key="entityId")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ActivityBinding:
        return ActivityBinding.model_construct(**data)


def parse_activity_bindings(payload: object) -> list[ActivityBinding]:
    """The ``result`` of ``crm.activity.binding.list``: ``[{entityTypeId, entityId}, ...]``."""
    return _load_rows(_ACTIVITY_BINDING, payload, "activity bindings", ActivityBinding)


class _ListPageSchema(_Wire):
    next = _Int(load_default=None, minimum=0)
    total = _Int(load_default=None, minimum=0)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ListPage:
        return ListPage.model_construct(**data)


def parse_list_page(payload: Mapping[str, Any]) -> ListPage:
    """``next`` and ``total`` of a list method's whole answer (not of its ``result``)."""
    return _load(_LIST_PAGE, _mapping(payload, "list answer"), "list answer", ListPage)


# --- the event queue: event.get and event.offline.get ---------------------------------------


class _OfflineTarget(fields.Field[int | None]):
    """``EVENT_DATA[FIELDS][ID]``; None for anything else. Never an error: Bitrix24 documents
    ``false`` and ``null`` for events without data, and a record that cannot be read must
    still be walked over and cleared rather than block its page for good."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | None:
        entity = value.get("FIELDS") if isinstance(value, Mapping) else None
        raw = entity.get("ID") if isinstance(entity, Mapping) else None
        text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
        return int(text) if _DIGITS.fullmatch(text) and int(text) > 0 else None


class _OfflineStamp(fields.Field[datetime | None]):
    """``TIMESTAMP_X``: documented with an offset; naive or unreadable is passed on as such."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime | None:
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None


class _OfflineEventSchema(_Wire):
    name = _Text(data_key="EVENT_NAME", required=True)
    entity_id = _OfflineTarget(data_key="EVENT_DATA", load_default=None, allow_none=True)
    at = _OfflineStamp(data_key="TIMESTAMP_X", load_default=None, allow_none=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> OfflineEvent:
        return OfflineEvent.model_construct(**{**data, "name": str(data["name"]).upper()})


class _OfflinePageSchema(_Wire):
    process_id = _Text(load_default=None, allow_none=True, blank_is_none=True)
    events = _Rows(_OfflineEventSchema, load_default=list)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> OfflinePage:
        return OfflinePage.model_construct(**data)


def parse_offline_page(payload: object) -> OfflinePage:
    """The ``result`` of ``event.offline.get``: ``{process_id, events: [...]}``."""
    if payload is None or payload == []:  # an empty queue may come as an empty array
        return OfflinePage.model_construct(process_id=None, events=[])
    return _load(_OFFLINE_PAGE, _mapping(payload, "offline events"), "offline events", OfflinePage)


class _EventHandlerSchema(_Wire):
    event = _Text(required=True)
    handler = _Text(required=True)
    offline = _Int(load_default=0)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> EventHandler:
        return EventHandler.model_construct(
            event=str(data["event"]).upper(), handler=data["handler"], offline=data["offline"] == 1
        )


def parse_event_handlers(payload: object) -> list[EventHandler]:
    """The ``result`` of ``event.get``: the handlers bound by this application."""
    return _load_rows(_EVENT_HANDLER, payload, "event handlers", EventHandler)


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


def _encode_into(out: list[str], name: str, value: object) -> None:
    items: list[tuple[object, object]]
    if isinstance(value, Mapping):
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


# --- loading --------------------------------------------------------------------------------


def _mapping(payload: object, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise WireError(f"{what} is not an object")
    return payload


def _load(schema: Schema, payload: Mapping[str, Any], what: str, model: type[_T]) -> _T:
    """Run a schema, turning its validation errors into a value-free WireError.

    The schemas build their records with ``model_construct``: every value has been checked
    here already, and checking it again in pydantic would double the cost of reading the
    answers a burst of chats brings (``docs/benchmarks.md``).
    """
    try:
        result = schema.load(payload)
    except ValidationError as error:
        raise WireError(f"{what}: {_describe(error.messages)}") from None
    if not isinstance(result, model):  # pragma: no cover - every schema's post_load makes one
        raise TypeError(f"{type(schema).__name__} did not build {model.__name__}")
    return result


def _load_rows(schema: Schema, payload: object, what: str, model: type[_T]) -> list[_T]:
    rows = _php_list(payload)
    if rows is None:
        raise WireError(f"{what} is not a list")
    return [
        _load(schema, _mapping(row, f"{what} row {index}"), f"{what} row {index}", model)
        for index, row in enumerate(rows)
    ]


def _describe(messages: object, path: str = "") -> str:
    """Marshmallow's nested error dict as ``auth.member_id: Missing data ...; ...``."""
    flat: list[str] = []
    _flatten_messages(messages, path, flat)
    return "; ".join(flat[:_MAX_REPORTED_ERRORS])


def _flatten_messages(messages: object, path: str, out: list[str]) -> None:
    if isinstance(messages, Mapping):
        for key, sub in messages.items():
            name = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            _flatten_messages(sub, name, out)
    elif isinstance(messages, list):
        for sub in messages:
            _flatten_messages(sub, path, out)
    else:
        out.append(f"{path or 'body'}: {messages}")


_EVENT = _EventSchema()
_FORM_EVENT = _FormEventSchema()
_TOKEN_GRANT = _TokenGrantSchema()
_ERROR = _ErrorSchema()
_CRM_ENTITY = _CrmEntitySchema()
_CHAT_REF = _ChatRefSchema()
_DIALOG = _DialogSchema()
_SESSION_HISTORY = _SessionHistorySchema()
_ACTIVITY = _ActivitySchema()
_ACTIVITY_BINDING = _ActivityBindingSchema()
_LIST_PAGE = _ListPageSchema()
_OFFLINE_PAGE = _OfflinePageSchema()
_EVENT_HANDLER = _EventHandlerSchema()
