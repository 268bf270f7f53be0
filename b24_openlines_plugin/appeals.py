"""A Bitrix24 lead or deal made by Open Lines → the appeal of its dialog.

One batch fetches the entity, its Open Lines activities (one per dialog) and the newest
dialog's transcript chained by ``$result[...]``; a deal's contact rides along. Only when the
activity is not there yet does a second batch look the chat up instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from b24_openlines_plugin.attribution import attribute
from b24_openlines_plugin.bitrix.client import Command, CommandResult, RestClient
from b24_openlines_plugin.bitrix.records import (
    OWNER_TYPE_IDS,
    ChatEntity,
    CrmEntity,
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
from b24_openlines_plugin.settings import B24Settings
from b24_openlines_plugin.site_script import session_in_text
from b24_openlines_plugin.transcript import messages_of, transcript_text
from hooks.errors import RetryLater, UpstreamError
from hooks.models import Appeal, Contact, CrmRef, Integration, PortalRef, Utm
from hooks.services import HostServices

SESSION_PROVIDER = "IMOPENLINES_SESSION"
_ACTIVITY_FIELDS = [
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
_OPENLINES_SOURCE = re.compile(r"^\d+\|")


@dataclass(frozen=True)
class ChatRecords:
    kind: ChatEntity
    entity: CrmEntity
    contact: CrmEntity | None
    history: SessionHistory | None
    connector: str | None


def _parsed(result: CommandResult, parse: Any) -> Any:
    try:
        return parse(result.unwrap())
    except WireError as exc:
        raise UpstreamError(f"Unexpected Bitrix24 answer: {exc}") from exc


async def fetch(client: RestClient, kind: ChatEntity, entity_id: int) -> ChatRecords:
    commands = {
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
                "select": _ACTIVITY_FIELDS,
            },
        ),
        "history": Command(
            "imopenlines.session.history.get",
            {"SESSION_ID": "$result[acts][0][ASSOCIATED_ENTITY_ID]"},
        ),
    }
    if kind == "deal":
        commands["contact"] = Command("crm.contact.get", {"id": "$result[entity][CONTACT_ID]"})
    results = await client.batch(commands)
    entity: CrmEntity = _parsed(results["entity"], parse_crm_entity)
    contact = None
    if kind == "deal" and entity.contact_id is not None:
        contact = _parsed(results["contact"], parse_crm_entity)
    activities = _parsed(results["acts"], parse_activities)
    if activities:
        history = _parsed(results["history"], parse_session_history)
        return ChatRecords(kind, entity, contact, history, activities[0].connector_id)
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
    chats = _parsed(more["chats"], parse_crm_chats)
    if not chats:
        return ChatRecords(kind, entity, contact, None, _connector_from_im(entity))
    dialog = _parsed(more["dialog"], parse_dialog)
    if dialog.session_id is None:
        return ChatRecords(kind, entity, contact, None, chats[0].connector_id)
    last = await client.batch(
        {"history": Command("imopenlines.session.history.get", {"SESSION_ID": dialog.session_id})}
    )
    history = _parsed(last["history"], parse_session_history)
    return ChatRecords(kind, entity, contact, history, chats[0].connector_id)


def appeal_key(member_id: str, openlines_session_id: int) -> str:
    """One appeal per Open Lines dialog of a portal."""
    return f"b24:{member_id}:session:{openlines_session_id}"


def is_open_lines(entity: CrmEntity) -> bool:
    return bool(_connector_from_im(entity)) or bool(
        entity.source_id and _OPENLINES_SOURCE.match(entity.source_id)
    )


def _connector_from_im(entity: CrmEntity) -> str | None:
    for im in entity.ims:
        if im.value.startswith("imol|"):
            return im.value.split("|")[1] or None
    return None


_PHONE_JUNK = re.compile(r"[^\d+]")


def normalize_phone(raw: str) -> str:
    """E.164 where the number is clearly Russian or already international, else as written."""
    digits = _PHONE_JUNK.sub("", raw)
    if digits.startswith("+") and 8 <= len(digits) <= 16:
        return digits
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "+7" + digits
    return raw.strip()


def contact_of(person: CrmEntity) -> Contact:
    name = " ".join(p for p in (person.name, person.second_name, person.last_name) if p) or None
    phones = list(dict.fromkeys(normalize_phone(m.value) for m in person.phones if m.value.strip()))
    emails = list(dict.fromkeys(m.value.strip().lower() for m in person.emails if m.value.strip()))
    return Contact(name=name, phones=phones, emails=emails)


def utm_of(entity: CrmEntity) -> Utm:
    return Utm(
        utm_source=entity.utm_source,
        utm_medium=entity.utm_medium,
        utm_campaign=entity.utm_campaign,
        utm_content=entity.utm_content,
        utm_term=entity.utm_term,
    )


async def build_appeal(
    records: ChatRecords,
    integration: Integration,
    settings: B24Settings,
    host: HostServices,
) -> Appeal | None:
    """The appeal of the newest dialog, or ``None`` when the entity is no Open Lines chat."""
    entity, history = records.entity, records.history
    if history is None:
        if is_open_lines(entity):
            raise RetryLater("Bitrix24 has not registered the chat of this entity yet")
        return None
    member_id = str(integration.connection["member_id"])
    domain = str(integration.connection["domain"])
    connector = records.connector or _user_code_connector(history) or "unknown"
    messages = messages_of(history)
    attribution = await attribute(
        settings,
        host.sessions,
        integration_id=integration.id,
        openlines_session_id=history.session_id,
        connector=connector,
        crm_utm=utm_of(entity),
        transcript_session_id=next(
            (found for m in messages if (found := session_in_text(m.text))), None
        ),
    )
    person = records.contact if records.kind == "deal" else entity
    endpoint = str(integration.connection["client_endpoint"]).removesuffix("/rest/").rstrip("/")
    return Appeal(
        key=appeal_key(member_id, history.session_id),
        integration_id=integration.id,
        created_at=entity.date_create,
        channel=connector,
        contact=contact_of(person) if person is not None else Contact(),
        attribution=attribution,
        employee_id=settings.employee_id,
        messages=messages,
        text=transcript_text(messages, host.language),
        crm=CrmRef(
            entity_type=records.kind,
            entity_id=entity.id,
            url=f"{endpoint}/crm/{records.kind}/details/{entity.id}/",
        ),
        portal=PortalRef(domain=domain, member_id=member_id),
    )


def _user_code_connector(history: SessionHistory) -> str | None:
    return history.user_code.split("|")[0] if history.user_code else None


async def process_entity(
    client: RestClient,
    integration: Integration,
    settings: B24Settings,
    host: HostServices,
    kind: ChatEntity,
    entity_id: int,
) -> Appeal | None:
    records = await fetch(client, kind, entity_id)
    appeal = await build_appeal(records, integration, settings, host)
    if appeal is not None:
        await host.appeals.upsert(appeal)
    return appeal
