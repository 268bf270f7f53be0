"""An Open Lines dialog's records → its appeal in "Raw data → Appeals and goals"."""

from __future__ import annotations

import re

from b24_openlines_plugin.attribution import MessengerCode, attribute
from b24_openlines_plugin.bitrix import dialogs
from b24_openlines_plugin.bitrix.client import RestClient
from b24_openlines_plugin.bitrix.dialogs import ChatRecords, is_open_lines
from b24_openlines_plugin.bitrix.event_queue import ACTIVITY_EVENTS, ENTITY_EVENTS
from b24_openlines_plugin.bitrix.records import Activity, ChatEntity, CrmEntity, SessionHistory
from b24_openlines_plugin.connectors import connector_label, link_channel
from b24_openlines_plugin.context import Portal
from b24_openlines_plugin.marker import visit_of_dialog
from b24_openlines_plugin.messenger_codes import code_in
from b24_openlines_plugin.transcript import messages_of, transcript_text
from hooks.errors import RetryLater
from hooks.models import Appeal, Contact, CrmRef, PortalRef, Utm


def appeal_key(member_id: str, openlines_session_id: int) -> str:
    """One appeal per Open Lines dialog of a portal."""
    return f"b24:{member_id}:session:{openlines_session_id}"


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


async def build_appeal(records: ChatRecords, portal: Portal) -> Appeal | None:
    """The dialog's appeal, or ``None`` when the entity is no Open Lines chat."""
    entity, history = records.entity, records.history
    if history is None:
        if records.chat_seen or is_open_lines(entity):
            raise RetryLater("Bitrix24 has not registered the chat of this entity yet")
        return None
    settings, host = portal.settings, portal.host
    connector = records.connector or _user_code_connector(history) or "unknown"
    messages = messages_of(history)
    # A code counts only in a messenger whose links the settings switch on (off: its links on
    # the site carry none, so a "code" there is typed, not the site's).
    channel = link_channel(connector)
    code = code_in(messages) if channel in settings.code_channels else None
    attribution = await attribute(
        settings,
        host.sessions,
        connector=connector,
        crm_utm=utm_of(entity),
        custom_data_visit=visit_of_dialog(history, connector),
        messenger_code=(
            MessengerCode(portal.id, str(history.session_id), code, channel) if code else None
        ),
    )
    person = records.contact if records.kind == "deal" else entity
    # When the dialog began: its activity's start, else (not registered yet) the entity's.
    started = records.activity.created if records.activity and records.activity.created else None
    return Appeal(
        key=appeal_key(portal.member_id, history.session_id),
        integration_id=portal.id,
        created_at=started or entity.date_create,
        channel=connector,
        channel_title=connector_label(connector),
        contact=contact_of(person) if person is not None else Contact(),
        attribution=attribution,
        employee_id=settings.employee_id,
        messages=messages,
        text=transcript_text(messages, host.language),
        crm=CrmRef(
            entity_type=records.kind,
            entity_id=entity.id,
            url=f"{portal.connection.portal_url}/crm/{records.kind}/details/{entity.id}/",
        ),
        portal=PortalRef(domain=portal.connection.domain or "", member_id=portal.member_id),
    )


def _user_code_connector(history: SessionHistory) -> str | None:
    return history.user_code.split("|")[0] if history.user_code else None


async def process_entity(
    client: RestClient, portal: Portal, kind: ChatEntity, entity_id: int
) -> Appeal | None:
    """A new lead's or deal's dialog → its appeal, written."""
    records = await dialogs.for_entity(client, kind, entity_id)
    return await _write(records, portal)


async def process_activity(client: RestClient, portal: Portal, activity: Activity) -> Appeal | None:
    """A dialog seen through its activity (new, answered, closed) → its appeal, written."""
    records = await dialogs.for_activity(client, activity)
    return None if records is None else await _write(records, portal)


async def process_event(
    client: RestClient, portal: Portal, name: str, entity_id: int
) -> Appeal | None:
    """An event (pushed, read from the offline queue, or retried) → its dialog's appeal.

    ``None``: nothing to write — not an Open Lines dialog's activity, not the entity the
    settings say chats create, or no Open Lines chat behind it.
    """
    if name in ACTIVITY_EVENTS:
        found = await dialogs.activity(client, entity_id)
        if found is None:
            return None
        return await process_activity(client, portal, found)
    entity = portal.settings.entity
    if name != ENTITY_EVENTS[entity]:
        return None
    return await process_entity(client, portal, entity, entity_id)


async def _write(records: ChatRecords, portal: Portal) -> Appeal | None:
    appeal = await build_appeal(records, portal)
    if appeal is None:
        return None
    if appeal.attribution.method != "session":
        # A visit once tied to the dialog is never lost when its proof cannot be read again
        # (an appeal attributed before visit ids were signed, a report bound before the chat's
        # custom data was the proof): rewriting the transcript keeps the attribution.
        stored = await portal.host.appeals.get(appeal.key)
        if stored is not None and stored.attribution.method == "session":
            appeal = appeal.model_copy(update={"attribution": stored.attribution})
    await portal.host.appeals.upsert(appeal)
    return appeal
