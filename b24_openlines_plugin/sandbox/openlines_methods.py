"""Open Lines and chat methods: find the chat of a CRM record, its dialog, its transcript."""

from __future__ import annotations

from b24_openlines_plugin.sandbox import channels
from b24_openlines_plugin.sandbox.calls import Call, Method, Outcome
from b24_openlines_plugin.sandbox.dialogs import chat_members, dialog_record, session_history
from b24_openlines_plugin.sandbox.errors import RestError, argument_empty
from b24_openlines_plugin.sandbox.params import get_param, truthy
from b24_openlines_plugin.sandbox.portal import OWNER_TYPE_IDS, Activity, Chat, SessionStatus


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _crm_activities(call: Call) -> list[Activity]:
    """IMOPENLINES_SESSION activities bound to ``CRM_ENTITY_TYPE``/``CRM_ENTITY``."""
    kind = str(get_param(call.params, "CRM_ENTITY_TYPE") or "").upper()
    entity_id = _int(get_param(call.params, "CRM_ENTITY"))
    if not kind:
        raise argument_empty("CRM_ENTITY_TYPE")
    if kind not in OWNER_TYPE_IDS:
        raise RestError("ERROR_ARGUMENT", "Argument 'CRM_ENTITY_TYPE' has an invalid type")
    if entity_id <= 0:
        raise argument_empty("CRM_ENTITY")
    type_id = OWNER_TYPE_IDS[kind]
    return [
        a
        for a in call.sandbox.portal.activities.values()
        if any(b.owner_type_id == type_id and b.owner_id == entity_id for b in a.bindings)
    ]


def crm_chat_get(call: Call) -> Outcome:
    """``ACTIVE_ONLY`` defaults to Y and then keeps only sessions with 10 <= STATUS < 50 —
    a lead made at the first message (NEW) or a closed dialog gives ``[]`` (API-FACTS §4.3)."""
    portal = call.sandbox.portal
    active_param = get_param(call.params, "ACTIVE_ONLY")
    active_only = True if active_param in (None, "") else truthy(active_param)
    sessions = [portal.sessions[a.session_id] for a in _crm_activities(call)]
    if active_only:
        sessions = [
            s for s in sessions if SessionStatus.ANSWER <= s.status < SessionStatus.WAIT_CLIENT
        ]
    sessions.sort(key=lambda s: (s.modified_at, s.id), reverse=True)
    rows, seen = [], set()
    for session in sessions:
        chat = portal.chats[session.chat_id]
        if chat.id in seen:
            continue
        seen.add(chat.id)
        rows.append(
            {
                "CHAT_ID": str(chat.id),
                "CONNECTOR_ID": chat.connector,
                "CONNECTOR_TITLE": channels.TITLES.get(chat.connector, chat.connector),
            }
        )
    return Outcome(rows)


def crm_chat_last_id(call: Call) -> Outcome:
    empty = RestError("CRM_CHAT_EMPTY_CRM_DATA", "Empty CRM data")
    try:
        activities = _crm_activities(call)
    except RestError:
        raise empty from None
    if not activities:
        raise empty
    latest = max(activities, key=lambda a: (a.updated_at, a.id))
    return Outcome(call.sandbox.portal.sessions[latest.session_id].chat_id)


def _find_chat(call: Call) -> Chat | None:
    portal = call.sandbox.portal
    chat_id = _int(get_param(call.params, "CHAT_ID"))
    dialog_id = str(get_param(call.params, "DIALOG_ID") or "")
    session_id = _int(get_param(call.params, "SESSION_ID"))
    user_code = str(get_param(call.params, "USER_CODE") or "")
    if not (chat_id or dialog_id or session_id or user_code):
        raise RestError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    if dialog_id.startswith("chat"):
        chat_id = _int(dialog_id[4:])
    if chat_id:
        return portal.chats.get(chat_id)
    if session_id:
        session = portal.sessions.get(session_id)
        return portal.chats.get(session.chat_id) if session else None
    if user_code:
        return portal.chat_by_user_code(user_code)
    return None


def dialog_get(call: Call) -> Outcome:
    chat = _find_chat(call)
    if chat is None:
        raise RestError("ACCESS_ERROR", "You do not have access to the specified dialog")
    return Outcome(dialog_record(call.sandbox.portal, chat, call.grant.user_id, call.tz))


def session_history_get(call: Call) -> Outcome:
    """By SESSION_ID anyone may read; by CHAT_ID alone only a chat member (the docs' trap)."""
    portal = call.sandbox.portal
    session_id = _int(get_param(call.params, "SESSION_ID"))
    chat_id = _int(get_param(call.params, "CHAT_ID"))
    if not session_id and not chat_id:
        raise RestError("MISSING_REQUIRED_PARAM", "Session ID or Chat ID must be provided")
    if session_id:
        session = portal.sessions.get(session_id)
        if session is None:
            raise RestError("INVALID_SESSION_ID", "Session not found")
        return Outcome(session_history(portal, session, call.tz))
    chat = portal.chats.get(chat_id)
    if chat is None:
        raise RestError("CHAT_ID", "Incorrect chat identifier")
    if call.grant.user_id not in chat_members(portal, chat):
        raise RestError(
            "ACCESS_DENIED",
            "You cannot open this conversation because you do not have sufficient rights.",
        )
    session = portal.sessions[max(chat.session_ids)]
    return Outcome(session_history(portal, session, call.tz))


def im_chat_get(call: Call) -> Outcome:
    """``ENTITY_TYPE=LINES``, ``ENTITY_ID=<USER_CODE>`` → ``{"ID": chat}``; anything else null."""
    entity_type = str(get_param(call.params, "ENTITY_TYPE") or "").upper()
    entity_id = str(get_param(call.params, "ENTITY_ID") or "")
    if entity_type != "LINES" or not entity_id:
        return Outcome(None)
    chat = call.sandbox.portal.chat_by_user_code(entity_id)
    if chat is None or entity_id.startswith("imol|"):
        return Outcome(None)
    return Outcome({"ID": chat.id})


def connector_list(call: Call) -> Outcome:
    return Outcome(dict(channels.TITLES))


METHODS = [
    Method("imopenlines.crm.chat.get", "imopenlines", crm_chat_get),
    Method("imopenlines.crm.chat.getLastId", "imopenlines", crm_chat_last_id),
    Method("imopenlines.dialog.get", "imopenlines", dialog_get),
    Method("imopenlines.session.history.get", "imopenlines", session_history_get),
    Method("im.chat.get", "im", im_chat_get),
    Method("imconnector.list", "imopenlines", connector_list),
]
