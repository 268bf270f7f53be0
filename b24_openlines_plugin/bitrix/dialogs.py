"""An Open Lines dialog's records in Bitrix24, fetched in as few round trips as batching allows.

A dialog is one Open Lines session; Bitrix24 writes one CRM activity (provider
``IMOPENLINES_SESSION``) per dialog, bound to the lead or deal it created, or to the contact of
a returning customer. The activity's owner (``OWNER_TYPE_ID``/``OWNER_ID``) is only its first
binding: a returning customer's dialog that makes a deal may be owned by the contact and bound
to the deal second, so dialogs are looked up through their bindings (``crm.activity.list``'s
``BINDINGS`` filter, ``crm.activity.binding.list``). Entities, activities and dialogs are looked
up through ``lookups``: the concurrent appeals of a portal share one list command per 50 ids.
From a lead or deal event: the entity and its newest dialog, then the dialog's transcript (and
a deal's contact); from an activity: the entity and the transcript, then a deal's contact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from b24_openlines_plugin.bitrix.client import Command, RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.lookups import (
    ACTIVITY_FIELDS,
    PAGE,
    both,
    lookups,
    parsed,
    read_bindings,
)
from b24_openlines_plugin.bitrix.records import (
    OWNER_TYPE_IDS,
    SESSION_PROVIDER,
    Activity,
    ChatEntity,
    ChatRef,
    CrmEntity,
    Dialog,
    OwnerType,
    SessionHistory,
)
from b24_openlines_plugin.bitrix.wire import (
    parse_activities,
    parse_crm_chats,
    parse_dialog,
)

__all__ = ["ACTIVITY_FIELDS", "PAGE", "parsed"]  # the catch-up and the offline queue use them
OWNER_KINDS: dict[int, OwnerType] = {number: kind for kind, number in OWNER_TYPE_IDS.items()}
# Whose dialog an activity bound to several is, as Bitrix24 ranks bindings (deal, then lead:
# crm's BindingSelector::sortBindings).
CHAT_KINDS: tuple[ChatEntity, ...] = ("deal", "lead")
_OPENLINES_SOURCE = re.compile(r"^\d+\|")


@dataclass(frozen=True)
class ChatRecords:
    kind: OwnerType
    entity: CrmEntity
    contact: CrmEntity | None  # a deal's contact
    history: SessionHistory | None
    connector: str | None
    activity: Activity | None = None
    # Bitrix24 showed a dialog of the entity (an activity bound to it, or an Open Lines chat):
    # it is an Open Lines entity whatever its SOURCE_ID, so a missing transcript is awaited.
    chat_seen: bool = False


async def _entity(client: RestClient, kind: OwnerType, entity_id: int) -> CrmEntity:
    """The entity; one the portal does not have fails as ``crm.<kind>.get`` did (its error)."""
    entity = await lookups(client).entity(kind, entity_id)
    if entity is None:
        raise BitrixError("NOT_FOUND", f"the portal has no {kind} {entity_id}")
    return entity


async def _contact(client: RestClient, kind: OwnerType, entity: CrmEntity) -> CrmEntity | None:
    """A deal's contact (a lead is its own person)."""
    if kind != "deal" or entity.contact_id is None:
        return None
    return await lookups(client).entity("contact", entity.contact_id)


async def history(client: RestClient, session_id: int) -> SessionHistory:
    """A dialog's transcript: one command per dialog, the only lookup with no list form."""
    found = await lookups(client).history(session_id)
    if found is None:
        raise BitrixError("NOT_FOUND", f"the portal has no dialog {session_id}")
    return found


async def _history_of(client: RestClient, activity: Activity) -> SessionHistory | None:
    return None if activity.session_id is None else await history(client, activity.session_id)


async def for_entity(client: RestClient, kind: ChatEntity, entity_id: int) -> ChatRecords:
    """A lead's or deal's newest dialog (the one that made it, for a new entity).

    Its activities are found by binding, not by owner (the docs' ``BINDINGS`` filter: an array
    of ``OWNER_TYPE_ID``/``OWNER_ID`` objects). A portal that refuses that filter is asked by
    owner, which finds every dialog the entity owns; the chat lookup below finds the rest.
    """
    entity, newest = await both(
        _entity(client, kind, entity_id), lookups(client).newest_dialog(kind, entity_id)
    )
    if newest is not None:
        transcript, contact = await both(
            _history_of(client, newest), _contact(client, kind, entity)
        )
        return ChatRecords(
            kind, entity, contact, transcript, newest.connector_id, newest, chat_seen=True
        )
    contact, (chats, dialog) = await both(
        _contact(client, kind, entity), _open_lines_chat(client, kind, entity_id)
    )
    if not chats or dialog is None:
        return ChatRecords(kind, entity, contact, None, connector_from_im(entity))
    if dialog.session_id is None:
        return ChatRecords(kind, entity, contact, None, chats[0].connector_id, chat_seen=True)
    transcript = await history(client, dialog.session_id)
    return ChatRecords(kind, entity, contact, transcript, chats[0].connector_id, chat_seen=True)


async def _open_lines_chat(
    client: RestClient, kind: ChatEntity, entity_id: int
) -> tuple[list[ChatRef], Dialog | None]:
    """No activity yet: Open Lines' chat of the entity (ACTIVE_ONLY=N, or closed chats hide),
    and its dialog for the session id: the history wants SESSION_ID, as CHAT_ID alone needs
    membership in the chat. ``(chats, dialog)``; the dialog only read when there is a chat."""
    more = await client.batch(
        {
            "chats": Command(
                "imopenlines.crm.chat.get",
                {"CRM_ENTITY_TYPE": kind, "CRM_ENTITY": entity_id, "ACTIVE_ONLY": "N"},
            ),
            "dialog": Command("imopenlines.dialog.get", {"CHAT_ID": "$result[chats][0][CHAT_ID]"}),
        }
    )
    chats: list[ChatRef] = parsed(more["chats"], parse_crm_chats)
    dialog: Dialog | None = parsed(more["dialog"], parse_dialog) if chats else None
    return chats, dialog


async def for_activity(client: RestClient, activity: Activity) -> ChatRecords | None:
    """The dialog of an Open Lines activity; ``None`` when it is bound to nothing we read.

    An activity owned by a lead or deal is that entity's dialog. One owned by a contact (or
    anything else) belongs to the deal or lead it is also bound to, if any; its bindings are
    read first when the activity came without them (from a walk of the activities or an event).
    """
    session_id = activity.session_id  # kept: the copy below with bindings loses its narrowing
    if session_id is None:
        return None
    if activity.bindings is None and OWNER_KINDS.get(activity.owner_type_id or 0) not in CHAT_KINDS:
        bindings = await read_bindings(client, activity.id)
        activity = activity.model_copy(update={"bindings": bindings})
    target = _dialog_entity(activity)
    if target is None:
        return None
    kind, entity_id = target
    entity, transcript = await both(_entity(client, kind, entity_id), history(client, session_id))
    contact = await _contact(client, kind, entity)
    return ChatRecords(kind, entity, contact, transcript, activity.connector_id, activity)


def _dialog_entity(activity: Activity) -> tuple[OwnerType, int] | None:
    """Whose dialog the activity is: its owner when a lead or deal, else the deal or lead it
    is bound to, else its owner when a contact."""
    owner = OWNER_KINDS.get(activity.owner_type_id or 0)
    if owner is not None and owner in CHAT_KINDS and activity.owner_id is not None:
        return owner, activity.owner_id
    for kind in CHAT_KINDS:
        for binding in activity.bindings or []:
            if binding.owner_type_id == OWNER_TYPE_IDS[kind]:
                return kind, binding.owner_id
    if owner == "contact" and activity.owner_id is not None:
        return owner, activity.owner_id
    return None


async def activity(client: RestClient, activity_id: int) -> Activity | None:
    """One activity if it is an Open Lines dialog's, else ``None``; its bindings are read
    later, only when its owner is no lead or deal."""
    return await lookups(client).activity(activity_id)


async def newest_activity(client: RestClient) -> Activity | None:
    """The Open Lines activity changed last (the newest ``LAST_UPDATED``, then ``ID``)."""
    answers = await client.batch(
        {"newest": _activity_page({}, {"LAST_UPDATED": "DESC", "ID": "DESC"})}
    )
    found: list[Activity] = parsed(answers["newest"], parse_activities)
    return found[0] if found else None


async def activities_after(
    client: RestClient, last_updated: datetime, after_id: int
) -> tuple[list[Activity], list[Activity]]:
    """The Open Lines activities after the keyset (``last_updated``, ``after_id``), in that
    order, in one batch: the rest of the ``last_updated`` second by ``ID``, and, when that
    fits in a page, the first page after the second. Keys, not offsets: rows that change
    meanwhile move past the keyset instead of shifting the pages under it."""
    moment = last_updated.isoformat()
    answers = await client.batch(
        {
            "same": _activity_page({"=LAST_UPDATED": moment, ">ID": after_id}, {"ID": "ASC"}),
            "later": _activity_page(
                {">LAST_UPDATED": moment}, {"LAST_UPDATED": "ASC", "ID": "ASC"}
            ),
        }
    )
    same: list[Activity] = parsed(answers["same"], parse_activities)
    if len(same) >= PAGE:
        return same, []
    later: list[Activity] = parsed(answers["later"], parse_activities)
    return same, later


async def count_activities(client: RestClient, since: datetime, until: datetime) -> int:
    """How many Open Lines activities changed between two moments (one request, no rows
    kept): what an import of past dialogs has ahead of it."""
    answer = await client.command(
        Command(
            "crm.activity.list",
            {
                "filter": {
                    "PROVIDER_ID": SESSION_PROVIDER,
                    ">=LAST_UPDATED": since.isoformat(),
                    "<=LAST_UPDATED": until.isoformat(),
                },
                "select": ["ID"],
                "start": 0,
            },
        )
    )
    answer.unwrap()
    return answer.total or 0


def _activity_page(filter_: dict[str, Any], order: dict[str, str]) -> Command:
    """One page of Open Lines activities; ``start=-1``: Bitrix24 skips counting the rows."""
    params: dict[str, Any] = {
        "filter": {"PROVIDER_ID": SESSION_PROVIDER, **filter_},
        "order": order,
        "select": ACTIVITY_FIELDS,
        "start": -1,
    }
    return Command("crm.activity.list", params)


def is_open_lines(entity: CrmEntity) -> bool:
    """What the entity itself tells: an IM link to an Open Lines chat, or a source Open Lines
    made (``<line>|<TYPE>``). A deal (no IM field) of a line with a fixed source, such as
    "1", tells nothing: ``ChatRecords.chat_seen`` is what knows it then."""
    return bool(connector_from_im(entity)) or bool(
        entity.source_id and _OPENLINES_SOURCE.match(entity.source_id)
    )


def connector_from_im(entity: CrmEntity) -> str | None:
    for im in entity.ims:
        if im.value.startswith("imol|"):
            return im.value.split("|")[1] or None
    return None
