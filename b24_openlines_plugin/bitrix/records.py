"""Bitrix24's objects as the plugin uses them (pydantic), and how Bitrix24 spells them.

The records read Bitrix24's payloads themselves: each field names its wire key as a validation
alias (``ID``, ``DATE_CREATE``, ``senderid``, ``data[FIELDS][ID]`` as a path) and takes the wire's
spellings through the validators below: numbers as strings, ``Y``/``N`` flags, PHP's ``[]`` for
an empty map, ``""`` or ``0`` for unset. Only ``wire`` reads payloads into them (by alias, unknown
keys ignored, ``context=WIRE``, which the few fields computed from a wire value look at); the
rest of the plugin builds records by field name and reads them.

Every failure is a ``PydanticCustomError`` of type ``wire`` whose message names the rule, never
the value: ``wire`` puts the field's path in front and hands it on as ``WireError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError


class _WireContext:
    """The validation context of a Bitrix24 payload (``wire`` passes it; nobody else does)."""

    def __repr__(self) -> str:
        return "WIRE"


WIRE: Final = _WireContext()


def _reading_wire(info: ValidationInfo) -> bool:
    return info.context is WIRE


# --- how Bitrix24 spells scalars ------------------------------------------------------------


def _error(message: str) -> PydanticCustomError:
    return PydanticCustomError("wire", message)


_DIGITS = re.compile(r"-?[0-9]{1,18}")
_NULL = "Field may not be null."
_MAX_INT = 10**18


def _integer(value: Any) -> int:
    """An integer sent as a JSON number or a string of ASCII digits.

    Stricter than pydantic's lax ``int``, which would take ``1.0``, ``" 7"``, ``"1_000"`` or
    non-ASCII digits as numbers; a bool is not a number either.
    """
    kind = type(value)
    if kind is str:  # the usual spelling, first
        if _DIGITS.fullmatch(value):
            return int(value)
    elif kind is int or (isinstance(value, int) and not isinstance(value, bool)):
        if -_MAX_INT < value < _MAX_INT:
            return int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    elif value is None:
        raise _error(_NULL)
    raise _error("Not an integer.")


def _at_least(number: int, minimum: int) -> int:
    if number < minimum:
        raise _error(f"Must be at least {minimum}.")
    return number


def _id(value: Any) -> int:
    """A required id: a positive integer."""
    number = _integer(value)
    if number < 1:
        raise _error("Must be at least 1.")
    return number


def _count(value: Any) -> int:
    """A required integer of 0 or more (a timestamp, an author id where 0 is the system)."""
    return _at_least(_integer(value), 0)


def _unset_or_integer(value: Any) -> int | None:
    """An integer Bitrix24 leaves unset as ``""``, ``"0"``, ``0`` or ``null`` (None)."""
    if value is None or value == "":
        return None
    return _integer(value) or None


def _ref_id(value: Any) -> int | None:
    """A reference to another record: a positive id, or unset (None)."""
    number = _unset_or_integer(value)
    return None if number is None else _at_least(number, 1)


def _optional_count(value: Any) -> int | None:
    """An integer of 0 or more, or null (``next`` and ``total`` of a list page)."""
    return None if value is None else _at_least(_integer(value), 0)


def _string(value: Any) -> str:
    """A string; a number is taken as its decimal text."""
    if type(value) is str or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _error(_NULL if value is None else "Not a string.")


def _text(value: Any) -> str:
    """A required string that may be blank."""
    return _string(value)


def _filled(value: Any) -> str:
    """A required string that is not blank."""
    text = _string(value)
    if text == "":
        raise _error("Must not be empty.")
    return text


def _ascii(text: str) -> str:
    """What Bitrix24 always spells in ASCII (ids, tokens) is compared in constant time, and
    ``hmac.compare_digest`` raises on non-ASCII text."""
    if not text.isascii():
        raise _error("Must be ASCII.")
    return text


def _filled_ascii(value: Any) -> str:
    return _ascii(_filled(value))


def _optional_text(value: Any) -> str | None:
    """A string; ``""`` and null are unset (None)."""
    if value is None or value == "":
        return None
    return _string(value)


def _optional_ascii(value: Any) -> str | None:
    text = _optional_text(value)
    return None if text is None else _ascii(text)


def _text_or_blank(value: Any) -> str:
    """A string; null reads as ``""``."""
    return "" if value is None else _string(value)


def _matching(pattern: str, message: str, read: Callable[[Any], str]) -> Callable[[Any], str]:
    regex = re.compile(pattern)

    def check(value: Any) -> str:
        text = read(value)
        if regex.match(text) is None:
            raise _error(message)
        return text

    return check


def _upper(read: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: read(value).upper()


def _flag(value: Any) -> bool:
    """A Bitrix24 flag: ``"Y"``/``"N"``, or a JSON boolean in the ``im`` module's answers."""
    if value == "Y" or value is True:
        return True
    if value == "N" or value is False:
        return False
    raise _error("Not Y or N.")


def _moment(value: Any) -> datetime:
    """An ISO 8601 date-time with its offset; naive ones are refused.

    Read with ``datetime.fromisoformat`` (every message of a transcript has one, and it is
    several times faster than a regular expression).
    """
    if isinstance(value, datetime):
        when = value
    elif not isinstance(value, str) or "T" not in value:
        raise _error(_NULL if value is None else "Not a valid ISO 8601 date-time.")
    else:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise _error("Not a valid ISO 8601 date-time.") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise _error("Not an aware date-time (it has no UTC offset).")
    return when


def _optional_moment(value: Any) -> datetime | None:
    """An aware date-time; ``""`` and null are unset (None)."""
    return None if value is None or value == "" else _moment(value)


def _stamp(value: Any) -> datetime | None:
    """``TIMESTAMP_X`` of the offline queue: documented with an offset; naive or unreadable
    is passed on as such (None when unreadable), never an error."""
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def php_list(value: object) -> list[Any] | None:
    """A PHP array as JSON: a list, or an object when its keys are not 0..n; None otherwise."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return list(value.values())
    return None


def _rows(value: Any) -> list[Any]:
    """A list of records; a keyed PHP array is taken by its values."""
    rows = php_list(value)
    if rows is None:
        raise _error(_NULL if value is None else "Not a list of records.")
    return rows


def _rows_or_none(value: Any) -> list[Any]:
    """A list of records; null or PHP's ``[]`` is none."""
    return [] if value is None else _rows(value)


_URL = re.compile(
    # marshmallow's validate.URL(schemes={"http", "https"}, require_tld=False), which read the
    # endpoints before: a portal may be named by its Unicode address, or be plain http on
    # localhost (the sandbox).
    r"^https?://"
    r"(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?"
    r"(?:(?:[A-Z0-9¡-\uffff](?:[A-Z0-9¡-\uffff-]{0,61}[A-Z0-9¡-\uffff])?\.)+"
    r"(?:[A-Z¡-\uffff]{2,6}\.?|[A-Z0-9¡-\uffff-]{2,}\.?)"
    r"|localhost"
    r"|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
    r"|\[[A-F0-9]*:[A-F0-9:]+\]"
    r"|(?:[A-Z0-9¡-\uffff](?:[A-Z0-9¡-\uffff-]{0,61}[A-Z0-9¡-\uffff])?\.?))"
    r"(?::\d+)?"
    r"(?:/?|[/?#]\S+)\Z",
    re.IGNORECASE,
)


def _endpoint(value: Any) -> str:
    """A REST/OAuth base URL; only http(s) (the sandbox portal is plain http on localhost)."""
    text = _string(value)
    if _URL.match(text) is None:
        raise _error("Not a valid URL.")
    return text


def _scope(value: Any) -> list[str]:
    """OAuth scope: ``"crm,im,imopenlines"`` (also taken as a list)."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _error(_NULL if value is None else "Not a scope list.")
    return [item.strip() for item in value if item.strip()]


Id = Annotated[int, PlainValidator(_id)]
Count = Annotated[int, PlainValidator(_count)]
RefId = Annotated[int | None, PlainValidator(_ref_id)]
UnsetOrInt = Annotated[int | None, PlainValidator(_unset_or_integer)]
OptionalCount = Annotated[int | None, PlainValidator(_optional_count)]
Text = Annotated[str, PlainValidator(_text)]
Filled = Annotated[str, PlainValidator(_filled)]
FilledAscii = Annotated[str, PlainValidator(_filled_ascii)]
OptionalText = Annotated[str | None, PlainValidator(_optional_text)]
OptionalAscii = Annotated[str | None, PlainValidator(_optional_ascii)]
TextOrBlank = Annotated[str, PlainValidator(_text_or_blank)]
UpperText = Annotated[str, PlainValidator(_upper(_text))]
Flag = Annotated[bool, PlainValidator(_flag)]
Moment = Annotated[datetime, PlainValidator(_moment)]
OptionalMoment = Annotated[datetime | None, PlainValidator(_optional_moment)]
Endpoint = Annotated[str, PlainValidator(_endpoint)]


class Record(BaseModel):
    # By name from Python; ``wire`` reads by alias alone and ignores the keys it does not use.
    # Values may be tokens: pydantic's own errors leave them out too.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        hide_input_in_errors=True,
    )


# --- events ---------------------------------------------------------------------------------


class EventAuth(Record):
    """An event's ``auth`` block. Tokens come with app events only, never with outgoing webhooks.

    What Bitrix24 spells in ASCII is read as ASCII; the domain and the endpoints may name a
    portal by its Unicode address.
    """

    domain: Annotated[str, PlainValidator(_matching(r"[^\s/@?#\\]+\Z", "Not a domain.", _filled))]
    client_endpoint: Endpoint
    server_endpoint: Endpoint
    member_id: FilledAscii
    application_token: FilledAscii
    access_token: OptionalAscii = None
    refresh_token: OptionalAscii = None
    expires_in: UnsetOrInt = None
    scope: OptionalAscii = None
    status: OptionalAscii = None
    user_id: RefId = None


class Event(Record):
    """An event delivery (``ONCRMLEADADD``, ``ONCRMDEALADD``, ``ONCRMACTIVITYADD``, ...)."""

    name: Annotated[  # upper case, as Bitrix24 spells it in the body
        str,
        PlainValidator(
            _upper(_matching(r"[A-Za-z][A-Za-z0-9_]{0,99}\Z", "Not an event name.", _text))
        ),
    ] = Field(validation_alias="event")
    handler_id: OptionalAscii = Field(None, validation_alias="event_handler_id")
    entity_id: Id = Field(validation_alias=AliasPath("data", "FIELDS", "ID"))
    ts: Count
    auth: EventAuth


# --- CRM ------------------------------------------------------------------------------------


class Multifield(Record):
    id: RefId = Field(None, validation_alias="ID")
    type_id: Filled = Field(validation_alias="TYPE_ID")  # PHONE, EMAIL, WEB, IM, LINK
    value_type: Text = Field(validation_alias="VALUE_TYPE")  # WORK, MOBILE, OPENLINE, IMOL, ...
    value: Text = Field(validation_alias="VALUE")


class CrmEntity(Record):
    """A lead, deal or contact from ``crm.<entity>.get`` (UPPERCASE fields in the wire format)."""

    id: Id = Field(validation_alias="ID")
    title: OptionalText = Field(None, validation_alias="TITLE")
    name: OptionalText = Field(None, validation_alias="NAME")
    second_name: OptionalText = Field(None, validation_alias="SECOND_NAME")
    last_name: OptionalText = Field(None, validation_alias="LAST_NAME")
    source_id: OptionalText = Field(None, validation_alias="SOURCE_ID")
    date_create: Moment = Field(validation_alias="DATE_CREATE")
    contact_id: RefId = Field(None, validation_alias="CONTACT_ID")
    assigned_by_id: RefId = Field(None, validation_alias="ASSIGNED_BY_ID")
    phones: list[Multifield] = Field([], validation_alias="PHONE")
    emails: list[Multifield] = Field([], validation_alias="EMAIL")
    ims: list[Multifield] = Field([], validation_alias="IM")
    utm_source: OptionalText = Field(None, validation_alias="UTM_SOURCE")
    utm_medium: OptionalText = Field(None, validation_alias="UTM_MEDIUM")
    utm_campaign: OptionalText = Field(None, validation_alias="UTM_CAMPAIGN")
    utm_content: OptionalText = Field(None, validation_alias="UTM_CONTENT")
    utm_term: OptionalText = Field(None, validation_alias="UTM_TERM")

    @field_validator("phones", "emails", "ims", mode="before")
    @classmethod
    def _multifields(cls, value: Any) -> list[Any]:
        return _rows_or_none(value)  # null is none; a keyed PHP array is taken by its values


class ChatRef(Record):
    """A row of ``imopenlines.crm.chat.get``."""

    chat_id: Id = Field(validation_alias="CHAT_ID")
    connector_id: Filled = Field(validation_alias="CONNECTOR_ID")
    connector_title: OptionalText = Field(None, validation_alias="CONNECTOR_TITLE")


# --- Open Lines -----------------------------------------------------------------------------


def _entity_data_part(index: int) -> Callable[[Any], str | None]:
    """A part of an Open Lines chat's ``entity_data_1``:
    ``CRM|CRM_ENTITY_TYPE|CRM_ENTITY_ID|PAUSE|WAIT_ACTION|SESSION_ID|DATE_CREATE|LINE_ID|...``;
    unset parts are ``NONE``, ``0`` or empty."""

    def part(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _error("Not an Open Lines entity_data_1 string.")
        parts = value.split("|")
        return parts[index] if index < len(parts) else ""

    return part


def _entity_data_ref(index: int) -> Callable[[Any, ValidationInfo], int | None]:
    read = _entity_data_part(index)

    def ref(value: Any, info: ValidationInfo) -> int | None:
        if not _reading_wire(info):
            return _ref_id(value)
        part = read(value)
        if not part:
            return None
        if not part.isascii() or not part.isdigit() or len(part) > 18:
            raise _error("Not an Open Lines entity_data_1 string.")
        return int(part) or None

    return ref


def _entity_data_type(value: Any, info: ValidationInfo) -> str | None:
    if not _reading_wire(info):
        return _optional_text(value)
    part = _entity_data_part(1)(value)
    return part if part not in (None, "", "NONE") else None


class Dialog(Record):
    """``imopenlines.dialog.get``: the operator chat and the session it is in."""

    chat_id: Id = Field(validation_alias="id")
    # entity_id: connector|line|connector chat|connector user
    user_code: Filled = Field(validation_alias="entity_id")
    session_id: Annotated[  # entity_data_1, sixth field
        int | None, PlainValidator(_entity_data_ref(5))
    ] = Field(None, validation_alias="entity_data_1")
    crm_entity_type: Annotated[  # entity_data_1, second field: LEAD, DEAL, ...
        str | None, PlainValidator(_entity_data_type)
    ] = Field(None, validation_alias="entity_data_1")
    crm_entity_id: Annotated[  # entity_data_1, third field
        int | None, PlainValidator(_entity_data_ref(2))
    ] = Field(None, validation_alias="entity_data_1")
    date_create: OptionalMoment = None


class HistoryUser(Record):
    id: Id
    name: TextOrBlank = ""
    is_connector: Flag = Field(False, validation_alias="connector")  # a client of a connector
    is_bot: Flag = Field(False, validation_alias="bot")


def _attach_blocks(params: object) -> list[dict[str, Any]]:
    """The blocks of a message's attach, in order: the live-chat widget's custom data arrives
    as such blocks (of a system message), and so do forms' answers."""
    attach = params.get("attach") if isinstance(params, dict) else None
    if not attach:
        return []
    blocks: list[dict[str, Any]] = []
    for item in php_list(attach) or []:
        found = item.get("blocks") if isinstance(item, dict) else None
        blocks += [block for block in php_list(found) or [] if isinstance(block, dict)]
    return blocks


def _block_texts(block: Mapping[str, Any]) -> list[str]:
    """The words of a block for the transcript: a ``message``, and grid rows as name: value."""
    texts = [block["message"]] if isinstance(block.get("message"), str) else []
    for row in php_list(block.get("grid")) or []:
        if isinstance(row, dict) and isinstance(row.get("value"), str | int):
            texts.append(f"{row.get('name') or ''}: {row['value']}".strip(": "))
    return texts


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _error("Not a list of strings.")
    return list(value)


def _attachments(value: Any, info: ValidationInfo) -> list[str]:
    """From the wire: the texts of the message's ``params[attach]`` blocks."""
    if not _reading_wire(info):
        return _texts(value)
    return [text for block in _attach_blocks(value) for text in _block_texts(block)]


def _attach_messages(value: Any, info: ValidationInfo) -> list[str]:
    """From the wire: the ``message`` of each of its ``params[attach]`` blocks."""
    if not _reading_wire(info):
        return _texts(value)
    return [
        block["message"] for block in _attach_blocks(value) if isinstance(block.get("message"), str)
    ]


class HistoryMessage(Record):
    id: Id
    author_id: Count = Field(validation_alias="senderid")  # 0 = a system message
    date: Moment
    text: TextOrBlank = ""  # BB-code, as Bitrix24 stores it
    # the text of its attach blocks (custom data, forms), in order
    attachments: Annotated[list[str], PlainValidator(_attachments)] = Field(
        [], validation_alias="params"
    )
    # its attach's MESSAGE blocks alone (custom data goes there)
    attach_messages: Annotated[list[str], PlainValidator(_attach_messages)] = Field(
        [], validation_alias="params"
    )


class SessionHistory(Record):
    """``imopenlines.session.history.get``: one dialog's messages, oldest first.

    Bitrix24 sends ``message`` and ``users`` as objects keyed by id (``[]`` when empty) and
    the operator chat's user code as ``chat[<chatId>].entityId``; author 0 is the system.
    """

    chat_id: Id = Field(validation_alias="chatId")
    session_id: Id = Field(validation_alias="sessionId")
    user_code: str | None = Field(None, validation_alias="chat")
    messages: list[HistoryMessage] = Field([], validation_alias="message")
    users: dict[int, HistoryUser] = Field({}, validation_alias="users")

    @field_validator("user_code", mode="plain")
    @classmethod
    def _user_code(cls, value: Any, info: ValidationInfo) -> str | None:
        """From the wire: ``chat`` keyed by chat id (``[]`` when empty), each ``{entityId}``."""
        if not _reading_wire(info):
            return _optional_text(value)
        if value is None or value == []:
            return None
        if not isinstance(value, Mapping):
            raise _error("Not a valid mapping type.")
        found: str | None = None
        for key, chat in value.items():
            if not isinstance(chat, Mapping):
                raise _error("Not a chat record.")
            code = _optional_text(chat.get("entityId"))
            if key == str(info.data.get("chat_id")):
                found = code
        return found

    @field_validator("messages", mode="wrap")
    @classmethod
    def _oldest_first(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> list[HistoryMessage]:
        messages: list[HistoryMessage] = handler(_rows_or_none(value))
        return sorted(messages, key=lambda message: message.id)

    @field_validator("users", mode="wrap")
    @classmethod
    def _by_id(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> dict[int, HistoryUser]:
        if not _reading_wire(info):
            return handler(value)  # type: ignore[no-any-return]
        # The rows are validated keyed by their place (an error names the place, not a value
        # of the payload), then keyed by the id each one has.
        users: dict[int, HistoryUser] = handler(dict(enumerate(_rows_or_none(value))))
        return {user.id: user for user in users.values()}


# --- activities -----------------------------------------------------------------------------


class ActivityBinding(Record):
    """A row of ``crm.activity.binding.list``: a CRM object the activity is bound to."""

    owner_type_id: Id = Field(validation_alias="entityTypeId")  # 1 lead, 2 deal, 3 contact, 4 …
    owner_id: Id = Field(validation_alias="entityId")


def _user_code(value: Any, info: ValidationInfo) -> str | None:
    """From the wire: ``PROVIDER_PARAMS[USER_CODE]``; other providers put anything there."""
    if not _reading_wire(info):
        return _optional_text(value)
    if not isinstance(value, Mapping):
        return None  # [] (PHP's empty array), null, or a provider's own shape
    code = value.get("USER_CODE")
    if code is None or code == "":
        return None
    if not isinstance(code, str):
        raise _error("USER_CODE is not a string.")
    return code


class Activity(Record):
    """A CRM activity; Open Lines writes one per dialog (provider ``IMOPENLINES_SESSION``).

    Its owner is only its first binding: a returning customer's dialog may be owned by the
    contact and bound to the deal it made. ``bindings`` is None until they are read.
    """

    id: Id = Field(validation_alias="ID")
    provider_id: OptionalText = Field(None, validation_alias="PROVIDER_ID")
    owner_type_id: RefId = Field(None, validation_alias="OWNER_TYPE_ID")  # 1 lead, 2 deal, …
    owner_id: RefId = Field(None, validation_alias="OWNER_ID")
    session_id: RefId = Field(None, validation_alias="ASSOCIATED_ENTITY_ID")
    connector_id: OptionalText = Field(None, validation_alias="RESULT_SOURCE_ID")
    user_code: Annotated[str | None, PlainValidator(_user_code)] = Field(
        None, validation_alias="PROVIDER_PARAMS"
    )
    completed: Flag = Field(validation_alias="COMPLETED")
    created: OptionalMoment = Field(None, validation_alias="CREATED")
    last_updated: OptionalMoment = Field(None, validation_alias="LAST_UPDATED")
    end_time: OptionalMoment = Field(None, validation_alias="END_TIME")
    bindings: list[ActivityBinding] | None = None

    @field_validator("session_id", mode="after")
    @classmethod
    def _session_of_open_lines(cls, value: int | None, info: ValidationInfo) -> int | None:
        # ASSOCIATED_ENTITY_ID is a session only for Open Lines; for a call it is the call.
        return value if info.data.get("provider_id") == SESSION_PROVIDER else None


# --- OAuth and errors -----------------------------------------------------------------------


class TokenGrant(Record):
    """An OAuth token answer (authorization code or refresh)."""

    access_token: Filled
    refresh_token: Filled
    expires_in: Id
    expires: UnsetOrInt = None  # Unix time the access token expires
    member_id: Filled
    client_endpoint: Endpoint
    server_endpoint: Endpoint
    domain: Filled  # the OAuth server's, not the portal's
    scope: Annotated[list[str], PlainValidator(_scope)]
    status: OptionalText = None
    user_id: RefId = None


class ErrorBody(Record):
    """``{"error": ..., "error_description": ...}`` of the REST API and the OAuth server."""

    error: Text  # may be "" (crm.activity.list's "Parameter ... must be array.")
    description: TextOrBlank = Field("", validation_alias="error_description")


# --- the event queue ------------------------------------------------------------------------


def _offline_target(value: Any, info: ValidationInfo) -> int | None:
    """From the wire: ``EVENT_DATA[FIELDS][ID]``; None for anything else. Never an error:
    Bitrix24 documents ``false`` and ``null`` for events without data, and a record that
    cannot be read must still be walked over and cleared rather than block its page for good."""
    if not _reading_wire(info):
        return _ref_id(value)
    entity = value.get("FIELDS") if isinstance(value, Mapping) else None
    raw = entity.get("ID") if isinstance(entity, Mapping) else None
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    return int(text) if _DIGITS.fullmatch(text) and int(text) > 0 else None


class OfflineEvent(Record):
    """A record of ``event.offline.get``: what changed, when; ``entity_id`` is None when
    Bitrix24 sent no data with it (``EVENT_DATA`` false or null, as documented)."""

    name: UpperText = Field(validation_alias="EVENT_NAME")  # upper case
    entity_id: Annotated[int | None, PlainValidator(_offline_target)] = Field(
        None, validation_alias="EVENT_DATA"
    )
    # TIMESTAMP_X; naive when the portal sent no offset; None unreadable
    at: Annotated[datetime | None, PlainValidator(_stamp)] = Field(
        None, validation_alias="TIMESTAMP_X"
    )


class OfflinePage(Record):
    """A page of the offline queue, reserved for ``process_id`` until cleared."""

    process_id: OptionalText = None
    events: list[OfflineEvent] = []

    @field_validator("events", mode="before")
    @classmethod
    def _php_rows(cls, value: Any) -> list[Any]:
        return _rows(value)


def _offline_flag(value: Any, info: ValidationInfo) -> bool:
    """From the wire: ``offline`` is ``1`` for an offline handler (``0``, or absent, online)."""
    if not _reading_wire(info):
        return _flag(value)
    return _integer(value) == 1


class EventHandler(Record):
    """A row of ``event.get``: an event bound to a handler URL, online or offline. An offline
    row names no handler (Bitrix24's rest module gives its ``connector_id`` instead): reading
    it as required made every periodic run after the offline binding fail, catch-up included."""

    event: UpperText  # upper case
    handler: Text = ""  # none on an offline row
    offline: Annotated[bool, PlainValidator(_offline_flag)] = False


class ListPage(Record):
    """A page of a list method: its rows are parsed by the caller's record type."""

    next: OptionalCount = None
    total: OptionalCount = None


SESSION_PROVIDER = "IMOPENLINES_SESSION"  # the PROVIDER_ID of an Open Lines dialog's activity
OwnerType = Literal["lead", "deal", "contact"]
ChatEntity = Literal["lead", "deal"]  # what Open Lines create for a new chat
OWNER_TYPE_IDS: dict[OwnerType, int] = {"lead": 1, "deal": 2, "contact": 3}
