"""The messenger connectors a portal knows and how Open Lines names them in CRM (API-FACTS §3)."""

from __future__ import annotations

TITLES: dict[str, str] = {
    "livechat": "Live Chat",
    "telegrambot": "Telegram",
    "whatsappbyedna": "Edna.com WhatsApp",
    "whatsappbytwilio": "WhatsApp",
    "viber": "Viber",
    "vkgroup": "VK",
    "avito": "Avito",
    "ok": "Classmates",
    "facebook": "Facebook*: Messages",
    "fbinstagramdirect": "Instagram* Direct",
    "imessage": "Apple Messages for Business",
    "network": "Bitrix24.Network",
    "notifications": "Bitrix24 SMS and WhatsApp",
}

# crm/common.php getCommunicationType(): the IM multifield's VALUE_TYPE; the rest are "IMOL".
_COMMUNICATION_TYPES = {
    "telegrambot": "TELEGRAM",
    "facebook": "FACEBOOK",
    "vkgroup": "VK",
    "network": "BITRIX24",
    "livechat": "OPENLINE",
    "viber": "VIBER",
    "instagram": "INSTAGRAM",
    "fbinstagram": "INSTAGRAM",
}


def communication_type(connector: str) -> str:
    return _COMMUNICATION_TYPES.get(connector, "IMOL")


def source_id(line_id: int, connector: str) -> str:
    """crm.php getSourceId(): ``<line>|<type>``; unmapped connectors use their id upper-cased."""
    suffix = _COMMUNICATION_TYPES.get(connector, connector.upper())
    return f"{line_id}|{suffix}"[:50]


def external_chat_id(connector: str, chat_id: int, phone: str | None) -> str:
    """The third part of USER_CODE: the messenger's own chat id (a phone number for WhatsApp)."""
    if connector.startswith("whatsapp") and phone:
        return "".join(ch for ch in phone if ch.isdigit())
    if connector == "telegrambot":
        return str(209600000 + chat_id)
    if connector == "vkgroup":
        return str(2000000000 + chat_id)
    return str(700000 + chat_id)
