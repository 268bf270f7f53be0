"""Bitrix24 Open Lines connectors (the channels a chat comes from), as data.

The ids are Bitrix24's own connector ids: the first part of an Open Lines chat's ``USER_CODE``
(``telegrambot|2|209607941|744``) and of the lead's ``IM`` value, so the messenger mapping in
the settings is keyed by what the webhook handler later reads from Bitrix24. Sources: the
``imconnector`` module's ``Library::ID_*_CONNECTOR`` constants and ``imconnector.list``
(see API-FACTS §4.2). Custom REST connectors (``imconnector.register``, e.g. Wazzup's
``wz_whatsapp_…``) use ids of their own; the settings accept those too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from b24_openlines_plugin.i18n import _, same
from hooks.models import LocalizedText
from hooks.services import MessengerChannel

__all__ = ["CONNECTORS", "CONNECTOR_ID_PATTERN", "Connector", "connector_label", "link_channel"]

# Lower case like Bitrix24's own ids. No dot: a connector id is one step of a dotted settings
# key (``messenger_map.<id>.source_id``) and a dot would make that key ambiguous.
CONNECTOR_ID_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Connector:
    id: str
    label: LocalizedText
    # The messenger whose links on the client's site may carry a visit's code into its chats.
    link_channel: MessengerChannel | None = None


# In the order the settings table shows them: the website first, then the common messengers.
CONNECTORS: tuple[Connector, ...] = (
    Connector("livechat", _("Website live chat")),
    Connector("telegrambot", _("Telegram"), "telegram"),
    Connector("whatsappbyedna", _("WhatsApp (Edna)"), "whatsapp"),
    Connector("whatsappbytwilio", _("WhatsApp (Twilio)"), "whatsapp"),
    # Bitrix24's virtual WhatsApp is not the client's number: its links are never the site's.
    Connector("notifications", _("Bitrix24 SMS and WhatsApp")),
    Connector("vkgroup", _("VK")),
    Connector("viber", _("Viber"), "viber"),
    Connector("facebook", _("Facebook Messenger")),
    Connector("facebookcomments", _("Facebook comments")),
    Connector("fbinstagramdirect", _("Instagram Direct")),
    Connector("fbinstagram", _("Instagram comments")),
    Connector("avito", _("Avito")),
    Connector("ok", _("Odnoklassniki")),
    Connector("olx", _("OLX")),
    Connector("yandex", _("Yandex Chats")),
    Connector("imessage", _("Apple Messages for Business")),
    Connector("wechat", _("WeChat")),
    Connector("network", _("Bitrix24.Network")),
    # Not among imconnector's built-in ids (Bitrix24's e-mail channel belongs to the CRM, not
    # to Open Lines); kept because the issue lists e-mail and an unused row is harmless.
    Connector("email", _("E-mail")),
)

_BY_ID = {connector.id: connector for connector in CONNECTORS}


def link_channel(connector_id: str) -> MessengerChannel | None:
    """The messenger of a connector as far as links with a code go; a custom (REST) connector
    whose id says WhatsApp (Wazzup's ``wz_whatsapp_…`` and the like) is WhatsApp."""
    connector = _BY_ID.get(connector_id.lower())
    if connector is not None:
        return connector.link_channel
    return "whatsapp" if "whatsapp" in connector_id.lower() else None


def connector_label(connector_id: str) -> LocalizedText:
    """The connector's name; an unknown (custom REST) connector is shown by its id."""
    connector = _BY_ID.get(connector_id)
    return connector.label if connector else same(connector_id)
