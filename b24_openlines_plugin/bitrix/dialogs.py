"""An Open Lines dialog's records in Bitrix24, fetched in as few round trips as batching allows.

A dialog is one Open Lines session; Bitrix24 writes one CRM activity (provider
``IMOPENLINES_SESSION``) per dialog, bound to the lead or deal it created, or to the contact of
a returning customer. The activity's owner (``OWNER_TYPE_ID``/``OWNER_ID``) is only its first
binding: a returning customer's dialog that makes a deal may be owned by the contact and bound
to the deal second, so dialogs are looked up through their bindings (``crm.activity.list``'s
``BINDINGS`` filter, ``crm.activity.binding.list``). From a lead or deal event, one batch
fetches the entity, its dialogs' activities and the newest dialog's transcript, chained with
``$result[...]``; from an activity, one batch fetches the transcript and the entity. A deal's
contact rides along either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from b24_openlines_plugin.bitrix.client import Command, CommandResult, RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.records import (
    OWNER_TYPE_IDS,
    SESSION_PROVIDER,
    Activity,
    ActivityBinding,
    ChatEntity,
    CrmEntity,
    OwnerType,
    SessionHistory,
)
from b24_openlines_plugin.bitrix.wire import (
    WireError,
    parse_activities,
    parse_activity_bindings,
    parse_crm_chats,
    parse_crm_entity,
    parse_dialog,
    parse_session_history,
)
from hooks.errors import UpstreamError

PAGE = 50  # rows a list method answers at once
ACTIVITY_FIELDS = [
    "ID",
    "PROVIDER_ID",
    "OWNER_TYPE_ID",
    "OWNER_ID",
    "ASSOCIATED_ENTITY_ID",
    "RESULT_SOURCE_ID",
    "PROVIDER_PARAMS",
    "COMPLETED",
    "CREATED",
    "LAST_UPDATED",
    "END_TIME",
]
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


def parsed(result: CommandResult, parse: Any) -> Any:
    try:
        return parse(result.unwrap())
    except WireError as exc:
        raise UpstreamError(f"Unexpected Bitrix24 answer: {exc}") from exc


def _with_deal_contact(commands: dict[str, Command], kind: OwnerType) -> dict[str, Command]:
    if kind == "deal":
        commands["contact"] = Command("crm.contact.get", {"id": "$result[entity][CONTACT_ID]"})
    return commands


def _contact(
    results: dict[str, CommandResult], kind: OwnerType, entity: CrmEntity
) -> CrmEntity | None:
    if kind == "deal" and entity.contact_id is not None:
        contact: CrmEntity = parsed(results["contact"], parse_crm_entity)
        return contact
    return None


def _dialogs(owner: dict[str, Any]) -> dict[str, Command]:
    """The dialogs' activities matching ``owner`` (a filter), newest first, and the newest's
    transcript."""
    return {
        "acts": Command(
            "crm.activity.list",
            {
                "filter": {**owner, "PROVIDER_ID": SESSION_PROVIDER},
                "order": {"ID": "DESC"},
                "select": ACTIVITY_FIELDS,
            },
        ),
        "history": Command(
            "imopenlines.session.history.get",
            {"SESSION_ID": "$result[acts][0][ASSOCIATED_ENTITY_ID]"},
        ),
    }


async def for_entity(client: RestClient, kind: ChatEntity, entity_id: int) -> ChatRecords:
    """A lead's or deal's newest dialog (the one that made it, for a new entity).

    Its activities are found by binding, not by owner (the docs' ``BINDINGS`` filter: an array
    of ``OWNER_TYPE_ID``/``OWNER_ID`` objects). A portal that refuses that filter is asked by
    owner, which finds every dialog the entity owns; the chat lookup below finds the rest.
    """
    owner = {"OWNER_TYPE_ID": OWNER_TYPE_IDS[kind], "OWNER_ID": entity_id}
    commands = _with_deal_contact(
        {
            "entity": Command(f"crm.{kind}.get", {"id": entity_id}),
            **_dialogs({"BINDINGS": [owner]}),
        },
        kind,
    )
    results = await client.batch(commands)
    entity: CrmEntity = parsed(results["entity"], parse_crm_entity)
    contact = _contact(results, kind, entity)
    if isinstance(results["acts"].error, BitrixError) or not await _bound_to(
        client, results["acts"], kind, entity_id
    ):
        results = {**results, **await client.batch(_dialogs(owner))}
    activities: list[Activity] = parsed(results["acts"], parse_activities)
    if activities:
        newest = activities[0]
        history = parsed(results["history"], parse_session_history) if newest.session_id else None
        return ChatRecords(
            kind, entity, contact, history, newest.connector_id, newest, chat_seen=True
        )
    # No activity yet: ask Open Lines for the chat (ACTIVE_ONLY=N, or closed chats hide), then
    # its dialog for the session id: the history wants SESSION_ID, as CHAT_ID alone needs
    # membership in the chat.
    more = await client.batch(
        {
            "chats": Command(
                "imopenlines.crm.chat.get",
                {"CRM_ENTITY_TYPE": kind, "CRM_ENTITY": entity_id, "ACTIVE_ONLY": "N"},
            ),
            "dialog": Command("imopenlines.dialog.get", {"CHAT_ID": "$result[chats][0][CHAT_ID]"}),
        }
    )
    chats = parsed(more["chats"], parse_crm_chats)
    if not chats:
        return ChatRecords(kind, entity, contact, None, connector_from_im(entity))
    dialog = parsed(more["dialog"], parse_dialog)
    if dialog.session_id is None:
        return ChatRecords(kind, entity, contact, None, chats[0].connector_id, chat_seen=True)
    last = await client.batch(
        {"history": Command("imopenlines.session.history.get", {"SESSION_ID": dialog.session_id})}
    )
    history = parsed(last["history"], parse_session_history)
    return ChatRecords(kind, entity, contact, history, chats[0].connector_id, chat_seen=True)


async def for_activity(client: RestClient, activity: Activity) -> ChatRecords | None:
    """The dialog of an Open Lines activity; ``None`` when it is bound to nothing we read.

    An activity owned by a lead or deal is that entity's dialog. One owned by a contact (or
    anything else) belongs to the deal or lead it is also bound to, if any; its bindings are
    read first when the activity came without them (from a walk of the activities).
    """
    if activity.session_id is None:
        return None
    if activity.bindings is None and OWNER_KINDS.get(activity.owner_type_id or 0) not in CHAT_KINDS:
        found = await client.batch({"bindings": _bindings_command(activity.id)})
        activity = activity.model_copy(update={"bindings": _bindings(found["bindings"])})
    target = _dialog_entity(activity)
    if target is None:
        return None
    kind, entity_id = target
    results = await client.batch(
        _with_deal_contact(
            {
                "entity": Command(f"crm.{kind}.get", {"id": entity_id}),
                "history": Command(
                    "imopenlines.session.history.get", {"SESSION_ID": activity.session_id}
                ),
            },
            kind,
        )
    )
    entity: CrmEntity = parsed(results["entity"], parse_crm_entity)
    history = parsed(results["history"], parse_session_history)
    return ChatRecords(
        kind, entity, _contact(results, kind, entity), history, activity.connector_id, activity
    )


async def _bound_to(
    client: RestClient, found: CommandResult, kind: ChatEntity, entity_id: int
) -> bool:
    """Whether the newest activity a ``BINDINGS`` query found is really the entity's: a portal
    that ignored the filter key would answer every dialog of the portal, and the newest of them
    would put another visitor's chat into this entity's appeal. Owned by the entity: yes;
    otherwise its bindings are read (one more request, for a contact-owned dialog only)."""
    if found.error is not None:
        return True  # nothing to check: the error is handled where it is read
    activities: list[Activity] = parsed(found, parse_activities)
    if not activities:
        return True
    newest = activities[0]
    wanted = OWNER_TYPE_IDS[kind]
    if (newest.owner_type_id, newest.owner_id) == (wanted, entity_id):
        return True
    bindings = _bindings((await client.batch({"b": _bindings_command(newest.id)}))["b"])
    return any((b.owner_type_id, b.owner_id) == (wanted, entity_id) for b in bindings)


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


def _bindings_command(activity_id: int) -> Command:
    return Command("crm.activity.binding.list", {"activityId": activity_id})


def _bindings(result: CommandResult) -> list[ActivityBinding]:
    """An activity's bindings; none when the portal refuses to list them (an error answer,
    not a busy one), which leaves its owner to go by, as before bindings were read."""
    if isinstance(result.error, BitrixError):
        return []
    bindings: list[ActivityBinding] = parsed(result, parse_activity_bindings)
    return bindings


async def activity(client: RestClient, activity_id: int) -> Activity | None:
    """One activity if it is an Open Lines dialog's, else ``None``; with its bindings, read in
    the same batch."""
    answers = await client.batch(
        {
            "act": Command(
                "crm.activity.list",
                {
                    "filter": {"ID": activity_id, "PROVIDER_ID": SESSION_PROVIDER},
                    "select": ACTIVITY_FIELDS,
                },
            ),
            "bindings": _bindings_command(activity_id),
        }
    )
    found: list[Activity] = parsed(answers["act"], parse_activities)
    if not found:
        return None
    return found[0].model_copy(update={"bindings": _bindings(answers["bindings"])})


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
