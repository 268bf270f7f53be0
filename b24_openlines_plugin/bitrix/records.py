"""Bitrix24's objects as the plugin uses them (pydantic), after ``wire`` has parsed them.

Only ``wire`` builds these from Bitrix24's payloads; everything else in the plugin reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventAuth(Record):
    """An event's ``auth`` block. Tokens come with app events only, never with outgoing webhooks."""

    domain: str
    client_endpoint: str
    server_endpoint: str
    member_id: str
    application_token: str
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int | None = None
    scope: str | None = None
    status: str | None = None
    user_id: int | None = None


class Event(Record):
    """An event delivery (``ONCRMLEADADD``, ``ONCRMDEALADD``, ``ONCRMACTIVITYADD``, ...)."""

    name: str  # upper case, as Bitrix24 spells it in the body
    handler_id: str | None = None
    entity_id: int  # data[FIELDS][ID]
    ts: int
    auth: EventAuth


class Multifield(Record):
    id: int | None = None
    type_id: str  # PHONE, EMAIL, WEB, IM, LINK
    value_type: str  # WORK, MOBILE, OPENLINE, TELEGRAM, IMOL, ...
    value: str


class CrmEntity(Record):
    """A lead, deal or contact from ``crm.<entity>.get`` (UPPERCASE fields in the wire format)."""

    id: int
    title: str | None = None
    name: str | None = None
    second_name: str | None = None
    last_name: str | None = None
    source_id: str | None = None
    date_create: AwareDatetime
    contact_id: int | None = None
    assigned_by_id: int | None = None
    phones: list[Multifield] = []
    emails: list[Multifield] = []
    ims: list[Multifield] = []
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None


class ChatRef(Record):
    """A row of ``imopenlines.crm.chat.get``."""

    chat_id: int
    connector_id: str
    connector_title: str | None = None


class Dialog(Record):
    """``imopenlines.dialog.get``: the operator chat and the session it is in."""

    chat_id: int
    user_code: str  # entity_id: connector|line|connector chat|connector user
    session_id: int | None  # entity_data_1, sixth field
    crm_entity_type: str | None = None  # entity_data_1, second field: LEAD, DEAL, ...
    crm_entity_id: int | None = None
    date_create: AwareDatetime | None = None


class HistoryUser(Record):
    id: int
    name: str
    is_connector: bool  # a client on the other side of a connector
    is_bot: bool


class HistoryMessage(Record):
    id: int
    author_id: int  # 0 = a system message
    date: AwareDatetime
    text: str  # BB-code, as Bitrix24 stores it
    attachments: list[str] = []  # the text of its attach blocks (custom data, forms), in order
    attach_messages: list[str] = []  # its attach's MESSAGE blocks alone (custom data goes there)


class SessionHistory(Record):
    """``imopenlines.session.history.get``: one dialog's messages, oldest first."""

    chat_id: int
    session_id: int
    user_code: str | None = None
    messages: list[HistoryMessage]
    users: dict[int, HistoryUser]


class ActivityBinding(Record):
    """A row of ``crm.activity.binding.list``: a CRM object the activity is bound to."""

    owner_type_id: int  # entityTypeId: 1 lead, 2 deal, 3 contact, 4 company
    owner_id: int  # entityId


class Activity(Record):
    """A CRM activity; Open Lines writes one per dialog (provider ``IMOPENLINES_SESSION``).

    Its owner is only its first binding: a returning customer's dialog may be owned by the
    contact and bound to the deal it made. ``bindings`` is None until they are read.
    """

    id: int
    provider_id: str | None = None
    owner_type_id: int | None = None  # 1 lead, 2 deal, 3 contact, 4 company
    owner_id: int | None = None
    session_id: int | None = None  # ASSOCIATED_ENTITY_ID
    connector_id: str | None = None  # RESULT_SOURCE_ID
    user_code: str | None = None  # PROVIDER_PARAMS[USER_CODE]
    completed: bool
    created: AwareDatetime | None = None
    last_updated: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    bindings: list[ActivityBinding] | None = None


class TokenGrant(Record):
    """An OAuth token answer (authorization code or refresh)."""

    access_token: str
    refresh_token: str
    expires_in: int
    expires: int | None = None  # Unix time the access token expires
    member_id: str
    client_endpoint: str
    server_endpoint: str
    domain: str  # the OAuth server's, not the portal's
    scope: list[str]
    status: str | None = None
    user_id: int | None = None


class ErrorBody(Record):
    """``{"error": ..., "error_description": ...}`` of the REST API and the OAuth server."""

    error: str
    description: str = ""


class OfflineEvent(Record):
    """A record of ``event.offline.get``: what changed, when; ``entity_id`` is None when
    Bitrix24 sent no data with it (``EVENT_DATA`` false or null, as documented)."""

    name: str  # upper case
    entity_id: int | None
    at: datetime | None  # TIMESTAMP_X; naive when the portal sent no offset; None unreadable


class OfflinePage(Record):
    """A page of the offline queue, reserved for ``process_id`` until cleared."""

    process_id: str | None
    events: list[OfflineEvent]


class EventHandler(Record):
    """A row of ``event.get``: an event bound to a handler URL, online or offline."""

    event: str  # upper case
    handler: str
    offline: bool


class ListPage(Record):
    """A page of a list method: its rows are parsed by the caller's record type."""

    next: int | None = None
    total: int | None = None


SESSION_PROVIDER = "IMOPENLINES_SESSION"  # the PROVIDER_ID of an Open Lines dialog's activity
OwnerType = Literal["lead", "deal", "contact"]
ChatEntity = Literal["lead", "deal"]  # what Open Lines create for a new chat
OWNER_TYPE_IDS: dict[OwnerType, int] = {"lead": 1, "deal": 2, "contact": 3}
