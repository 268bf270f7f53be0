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
    "facebookcomments": "Facebook*: Comments",
    "fbinstagramdirect": "Instagram* Direct",
    "fbinstagram": "Instagram Business",
    "imessage": "Apple Messages for Business",
    "network": "Bitrix24.Network",
    "notifications": "Bitrix24 SMS and WhatsApp",
    "olx": "OLX",
    "wechat": "WeChat",
    "yandex": "Yandex Chat",
    # Custom connectors exist once an app registers them (imconnector.register: lower-case
    # letters, digits and "_", no "."); imconnector.list lists them beside the built-in ones.
    # This portal has Wazzup's, whose ids are "wz_<messenger>_<its hash>".
    "wz_whatsapp_3f9d2b7a41c84e06b5d1a9c0e7f26b4d8": "WAZZUP: WhatsApp",
    "wz_telegram_5e2a0c9b7d14f3a68b09e1c2d7f4a3b56": "WAZZUP: Telegram",
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


def source_id(line_id: int, connector: str, fixed: str | None = None) -> str:
    """crm.php getSourceId(): the line's fixed CRM source when it has one, else ``<line>|<type>``
    (unmapped connectors use their id upper-cased)."""
    if fixed is not None:
        return fixed
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
