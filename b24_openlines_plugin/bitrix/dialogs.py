"""An Open Lines dialog's records in Bitrix24, fetched in as few round trips as batching allows.

A dialog is one Open Lines session; Bitrix24 writes one CRM activity (provider
``IMOPENLINES_SESSION``) per dialog, bound to the lead or deal it created, or to the contact of
a returning customer. From a lead or deal event, one batch fetches the entity, its dialogs'
activities and the newest dialog's transcript, chained with ``$result[...]``; from an activity,
one batch fetches the transcript and the entity. A deal's contact rides along either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from b24_openlines_plugin.bitrix.client import Command, CommandResult, RestClient
from b24_openlines_plugin.bitrix.records import (
    OWNER_TYPE_IDS,
    Activity,
    ChatEntity,
    CrmEntity,
    OwnerType,
    SessionHistory,
)
from b24_openlines_plugin.bitrix.wire import (
    WireError,
    parse_activities,
    parse_crm_chats,
    parse_crm_entity,
    parse_dialog,
    parse_session_history,
)
from hooks.errors import UpstreamError

SESSION_PROVIDER = "IMOPENLINES_SESSION"
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
_OPENLINES_SOURCE = re.compile(r"^\d+\|")


@dataclass(frozen=True)
class ChatRecords:
    kind: OwnerType
    entity: CrmEntity
    contact: CrmEntity | None  # a deal's contact
    history: SessionHistory | None
    connector: str | None
    activity: Activity | None = None


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


async def for_entity(client: RestClient, kind: ChatEntity, entity_id: int) -> ChatRecords:
    """A lead's or deal's newest dialog (the one that made it, for a new entity)."""
    commands = _with_deal_contact(
        {
            "entity": Command(f"crm.{kind}.get", {"id": entity_id}),
            "acts": Command(
                "crm.activity.list",
                {
                    "filter": {
                        "OWNER_TYPE_ID": OWNER_TYPE_IDS[kind],
                        "OWNER_ID": entity_id,
                        "PROVIDER_ID": SESSION_PROVIDER,
                    },
                    "order": {"ID": "DESC"},
                    "select": ACTIVITY_FIELDS,
                },
            ),
            "history": Command(
                "imopenlines.session.history.get",
                {"SESSION_ID": "$result[acts][0][ASSOCIATED_ENTITY_ID]"},
            ),
        },
        kind,
    )
    results = await client.batch(commands)
    entity: CrmEntity = parsed(results["entity"], parse_crm_entity)
    contact = _contact(results, kind, entity)
    activities: list[Activity] = parsed(results["acts"], parse_activities)
    if activities:
        history = parsed(results["history"], parse_session_history)
        return ChatRecords(
            kind, entity, contact, history, activities[0].connector_id, activities[0]
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
        return ChatRecords(kind, entity, contact, None, chats[0].connector_id)
    last = await client.batch(
        {"history": Command("imopenlines.session.history.get", {"SESSION_ID": dialog.session_id})}
    )
    history = parsed(last["history"], parse_session_history)
    return ChatRecords(kind, entity, contact, history, chats[0].connector_id)


async def for_activity(client: RestClient, activity: Activity) -> ChatRecords | None:
    """The dialog of an Open Lines activity; ``None`` when it is bound to nothing we read."""
    kind = OWNER_KINDS.get(activity.owner_type_id or 0)
    if kind is None or activity.owner_id is None or activity.session_id is None:
        return None
    results = await client.batch(
        _with_deal_contact(
            {
                "entity": Command(f"crm.{kind}.get", {"id": activity.owner_id}),
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


async def activity(client: RestClient, activity_id: int) -> Activity | None:
    """One activity if it is an Open Lines dialog's, else ``None``."""
    found: list[Activity] = parsed(
        (
            await client.batch(
                {
                    "act": Command(
                        "crm.activity.list",
                        {
                            "filter": {"ID": activity_id, "PROVIDER_ID": SESSION_PROVIDER},
                            "select": ACTIVITY_FIELDS,
                        },
                    )
                }
            )
        )["act"],
        parse_activities,
    )
    return found[0] if found else None


async def newest_activity(client: RestClient) -> Activity | None:
    """The Open Lines activity changed last (the newest ``LAST_UPDATED``, then ``ID``)."""
    answers = await client.batch(
        {"newest": _activity_page({}, {"LAST_UPDATED": "DESC", "ID": "DESC"})}
    )
    found: list[Activity] = parsed(answers["newest"], parse_activities)
    return found[0] if found else None


async def activities_after(
    client: RestClient, last_updated: str, after_id: int
) -> tuple[list[Activity], list[Activity]]:
    """The Open Lines activities after the keyset (``last_updated``, ``after_id``), in that
    order, in one batch: the rest of the ``last_updated`` second by ``ID``, and, when that
    fits in a page, the first page after the second. Keys, not offsets: rows that change
    meanwhile move past the keyset instead of shifting the pages under it."""
    answers = await client.batch(
        {
            "same": _activity_page({"=LAST_UPDATED": last_updated, ">ID": after_id}, {"ID": "ASC"}),
            "later": _activity_page(
                {">LAST_UPDATED": last_updated}, {"LAST_UPDATED": "ASC", "ID": "ASC"}
            ),
        }
    )
    same: list[Activity] = parsed(answers["same"], parse_activities)
    if len(same) >= PAGE:
        return same, []
    later: list[Activity] = parsed(answers["later"], parse_activities)
    return same, later


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
    return bool(connector_from_im(entity)) or bool(
        entity.source_id and _OPENLINES_SOURCE.match(entity.source_id)
    )


def connector_from_im(entity: CrmEntity) -> str | None:
    for im in entity.ims:
        if im.value.startswith("imol|"):
            return im.value.split("|")[1] or None
    return None
