"""Open Lines chats as the REST API shows them: ``imopenlines.dialog.get`` and the session history.

Shapes follow imopenlines.dialog.get.json and imopenlines.session.history.get.json: the
operator chat's ``entity_data_1`` carries the session id in its 6th place, messages are keyed
by id, system messages have sender "0", and empty PHP arrays come back as ``[]``.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any

from b24_openlines_plugin.sandbox.portal import Chat, Message, Portal, Session, User
from b24_openlines_plugin.sandbox.records import atom


def entity_data_1(chat: Chat, session: Session) -> str:
    """``CRM|TYPE|ID|PAUSE|WAIT_ACTION|SESSION_ID|DATE_CREATE|LINE_ID|BLOCK_DATE|BLOCK_REASON``."""
    crm = session.crm
    head = f"Y|{crm.kind}|{crm.id}" if crm else "N|NONE|0"
    return f"{head}|N|N|{session.id}|{int(session.started_at)}|{chat.line_id}|0|0"


def entity_data_2(session: Session) -> str:
    crm = session.crm
    if crm is None:
        return ""
    return f"LEAD|{crm.lead_id}|COMPANY|0|CONTACT|{crm.contact_id}|DEAL|{crm.deal_id}"


def chat_members(portal: Portal, chat: Chat) -> list[int]:
    """The guest, and the operator once a session of this chat was answered."""
    members = [chat.guest_id]
    if any(portal.sessions[s].answered for s in chat.session_ids):
        members.append(chat.operator_id)
    return members


def dialog_record(portal: Portal, chat: Chat, viewer_id: int, tz: tzinfo) -> dict[str, Any]:
    session = portal.last_session(chat)
    messages = portal.chat_messages(chat.id)
    last_id = max((m.id for m in messages), default=0)
    members = chat_members(portal, chat)
    answered = chat.operator_id in members
    return {
        "id": chat.id,
        "parent_chat_id": 0,
        "parent_message_id": 0,
        "name": chat.name,
        "description": None,
        "owner": chat.operator_id if answered else 0,
        "extranet": False,
        "avatar": "",
        "color": chat.color,
        "type": "lines",
        "counter": 0,
        "user_counter": len(members),
        "message_count": len(messages),
        "unread_id": 0,
        "restrictions": dict.fromkeys(
            (
                "avatar",
                "rename",
                "extend",
                "call",
                "mute",
                "leave",
                "leave_owner",
                "send",
                "user_list",
            ),
            True,
        ),
        "last_message_id": last_id,
        "last_id": last_id,
        "marked_id": 0,
        "disk_folder_id": 0,
        "entity_type": "LINES",
        "entity_id": chat.user_code,
        "entity_data_1": entity_data_1(chat, session),
        "entity_data_2": entity_data_2(session),
        "entity_data_3": "N",
        "mute_list": [],
        "date_create": atom(chat.created_at, tz),
        "message_type": "L",
        "public": "",
        "role": "member" if viewer_id in members else "none",
        "entity_link": {"type": "LINES", "url": "", "id": chat.user_code},
        "text_field_enabled": True,
        "background_id": None,
        "permissions": {
            "manage_users_add": "member",
            "manage_users_delete": "manager",
            "manage_ui": "member",
            "manage_settings": "owner",
            "manage_messages": "member",
            "can_post": "member",
        },
        "is_new": False,
        "readed_list": [],
        "manager_list": [chat.operator_id] if answered else [],
        "last_message_views": {"message_id": last_id, "first_viewers": [], "count_of_viewers": 0},
        "dialog_id": f"chat{chat.id}",
    }


_LEGACY = [
    (re.compile(r"\[(/?)(b|i|u|s)\]", re.IGNORECASE), r"<\1\2>"),
    (re.compile(r"\[url=([^\]]+)\](.*?)\[/url\]", re.IGNORECASE), r'<a href="\1">\2</a>'),
    (re.compile(r"\n"), "<br />"),
]


def text_legacy(text: str) -> str:
    """``textlegacy`` is the BB-code text rendered as the old HTML-ish markup."""
    for pattern, replacement in _LEGACY:
        text = pattern.sub(replacement, text)
    return text


def message_json(message: Message, tz: tzinfo) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "chatid": str(message.chat_id),
        "senderid": str(message.author_id),
        "recipientid": f"chat{message.chat_id}",
        "date": atom(message.at, tz),
        "text": message.text,
        "textlegacy": text_legacy(message.text),
        "params": message.params or [],
    }


def user_json(user: User, tz: tzinfo, seen_at: float) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "name": user.name,
        "active": True,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "workPosition": user.work_position,
        "color": user.color,
        "avatar": "/bitrix/js/im/images/blank.gif" if user.guest else "",
        "avatarId": None,
        "birthday": False,
        "gender": user.gender,
        "phoneDevice": False,
        "phones": False,
        "extranet": user.guest,
        "network": False,
        "bot": False,
        "connector": user.guest,
        "profile": f"/company/personal/user/{user.id}/",
        "externalAuthId": "imconnector" if user.guest else "socservices",
        "status": None if user.guest else "online",
        "idle": False,
        "lastActivityDate": atom(seen_at, tz),
        "mobileLastDate": False,
        "desktopLastDate": False,
        "departments": [] if user.guest else [1],
        "absent": False,
        "type": "user",
        "services": None,
        "botData": None,
    }


def history_chat_json(portal: Portal, chat: Chat, session: Session, tz: tzinfo) -> dict[str, Any]:
    members = chat_members(portal, chat)
    answered = chat.operator_id in members
    return {
        "id": str(chat.id),
        "parentChatId": 0,
        "parentMessageId": 0,
        "name": chat.name,
        "owner": str(chat.operator_id if answered else 0),
        "color": chat.color,
        "extranet": False,
        "avatar": "/bitrix/js/im/images/blank.gif",
        "call": "0",
        "callNumber": "",
        "entityType": "LINES",
        "entityId": chat.user_code,
        "entityData1": entity_data_1(chat, session),
        "entityData2": entity_data_2(session),
        "entityData3": "",
        "messageCount": len(portal.chat_messages(chat.id)),
        "public": "",
        "muteList": {str(uid): False for uid in members},
        "managerList": [chat.operator_id] if answered else [],
        "dateCreate": atom(chat.created_at, tz),
        "type": "lines",
        "entityLink": {"type": "LINES", "url": "", "id": chat.user_code},
        "permissions": {
            "manageUsersAdd": "member",
            "manageUsersDelete": "manager",
            "manageUi": "member",
            "manageSettings": "owner",
            "manageMessages": "member",
            "canPost": "member",
        },
        "textFieldEnabled": True,
        "backgroundId": None,
        "messageType": "L",
        "isNew": False,
    }


def session_history(portal: Portal, session: Session, tz: tzinfo) -> dict[str, Any]:
    chat = portal.chats[session.chat_id]
    messages = sorted(portal.session_messages(session.id), key=lambda m: m.id, reverse=True)
    members = chat_members(portal, chat)
    user_ids = sorted({m.author_id for m in messages if m.author_id} | set(members))
    users = {str(uid): user_json(portal.users[uid], tz, session.modified_at) for uid in user_ids}
    staff = [str(uid) for uid in user_ids if not portal.users[uid].guest]
    return {
        "chatId": chat.id,
        "canJoin": "Y",
        "canVoteHead": "Y",
        "sessionId": session.id,
        "sessionVoteHead": 0,
        "sessionCommentHead": None,
        "userId": f"chat{chat.id}",
        "message": {str(m.id): message_json(m, tz) for m in messages} or [],
        "usersMessage": {f"chat{chat.id}": [str(m.id) for m in messages]},
        "users": users or [],
        "openlines": {"canvoteashead": {str(chat.line_id): True}},
        "userInGroup": {"1": {"id": 1, "users": staff}} if staff else [],
        "woUserInGroup": [],
        "chat": {str(chat.id): history_chat_json(portal, chat, session, tz)},
        "userBlockChat": {str(chat.id): {str(uid): False for uid in members}},
        "userInChat": {str(chat.id): members},
        "files": [],
    }
