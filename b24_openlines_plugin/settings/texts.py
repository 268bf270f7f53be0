"""Every text of the settings page: sections, fields, choices, errors, status, notes.

The one place the settings' words are written: the model and the view name these constants and
call these functions, and never write a text of their own. The words are messages of the
plugin's catalogs (``b24_openlines_plugin.i18n``), each translated into every language when
the module loads. A field's label and help travel together as a ``FieldText``; a text with
values in it is a function.
"""

from __future__ import annotations

from typing import NamedTuple

from b24_openlines_plugin.i18n import _, join, ngettext, same
from hooks.models import LocalizedText


class FieldText(NamedTuple):
    label: LocalizedText
    help: LocalizedText | None = None


class SectionText(NamedTuple):
    title: LocalizedText
    help: LocalizedText | None = None  # may name %(redirect_url)s and %(webhook_url)s


# --- sections ------------------------------------------------------------------------------

CREDENTIALS = SectionText(
    _("Credentials"),
    _(
        "Create a local application in Bitrix24 (Developers → Other → Local application). Set "
        "its redirect URL to %(redirect_url)s and grant the scopes CRM (crm), Open Lines "
        "(imopenlines), Chat and notifications (im), Contact center (contact_center). Enter the "
        "Application ID (client_id) and Application key (client_secret) it issues below."
    ),
)
ACTIVATION = SectionText(_("Activation"))
WEBHOOK = SectionText(
    _("Webhook"),
    _(
        "In Bitrix24, set up an outgoing webhook on the event 'Lead created' (ONCRMLEADADD) or "
        "'Deal created' (ONCRMDEALADD), whichever your Open Lines create. Enter the Webhook URL "
        "as its handler URL: %(webhook_url)s"
    ),
)
EMPLOYEE = SectionText(_("Employee"))
TRAFFIC = SectionText(
    _("Traffic type"),
    _("What appeals without a session, such as chats from messengers, are attributed to."),
)
MESSENGERS = SectionText(
    _("Messengers and sources"),
    _(
        "Choose the source or ad campaign that chats from each messenger go to when no session "
        "is found. 'Default' takes the value from 'Traffic type'; an empty site takes the "
        "default site."
    ),
)
MESSENGER_LINKS = SectionText(
    _("Messenger links"),
    _(
        "The site script puts the visitor's code into the site's links to the messengers "
        "switched on here (a Telegram bot's start link, or the end of the text a WhatsApp or "
        "Viber link prefills), and a chat that arrives with the code counts for the visitor's "
        "ad campaign and UTM tags. A visitor may delete the code from a prefilled text: that "
        "chat takes the messenger's row above. After changing this section, copy the site "
        "script below again and replace it on the site."
    ),
)
SCRIPT = SectionText(
    _("Site script"),
    _(
        "Install the script on every page of the site that carries the Bitrix24 Open Lines "
        "widget, after the platform's tracking code."
    ),
)

# --- fields --------------------------------------------------------------------------------

# Named as the local application's card in Bitrix24 names them, so the client finds them there.
CLIENT_ID = FieldText(
    _("Application ID (client_id)"),
    _("From the local application's card, e.g. local.64ccbcf7db22b1.98148679"),
)
CLIENT_SECRET = FieldText(
    _("Application key (client_secret)"),
    _("From the same card. A saved key is never shown: leave the field empty to keep it."),
)
PORTAL = FieldText(
    _("Bitrix24 portal address"),
    _(
        "E.g. name.bitrix24.ru or a custom domain such as b24.example.ru. You may paste a link "
        "from the portal's address bar: only the address is kept."
    ),
)
ACTIVE = FieldText(
    _("Integration active"),
    _("While the integration is off, incomplete settings can be saved; no chats are carried over."),
)
ENTITY = FieldText(
    _("Entity a chat creates"),
    _(
        "What your Open Lines create for a new chat: a lead (event ONCRMLEADADD) or a deal "
        "(ONCRMDEALADD)."
    ),
)
IMPORT_DAYS = FieldText(
    _("Import past chats"),
    _(
        "On connecting the portal, the Open Lines dialogs of this many days before are imported; "
        "the status above shows how far it got."
    ),
)
PLAN = FieldText(
    _("Bitrix24 plan"),
    _(
        "How many requests per second the portal allows: 2 (bursts of 50) on most plans, 5 "
        "(bursts of 250) on Enterprise."
    ),
)
APPLICATION_TOKEN = FieldText(
    _("Application token"),
    _(
        "Optional. The token shown on Bitrix24's outgoing webhook page: it proves an event comes "
        "from your portal. A saved token is never shown."
    ),
)
EMPLOYEE_ID = FieldText(
    _("Employee"),
    _("The employee shown as the operator of the chat's appeal."),
)
TRAFFIC_TYPE = FieldText(_("Traffic type"))
SOURCE_ID = FieldText(_("Source"))
SITE_ID = FieldText(_("Site"))
CAMPAIGN_ID = FieldText(_("Ad campaign"))
SITE_DOMAINS = FieldText(
    _("Site domains"),
    _(
        "Comma-separated: the sites that carry the script (e.g. shop.example.ru). Only they may "
        "report to the host. Empty: the domains of your account's sites."
    ),
)
TRACKER_GETTER = FieldText(
    _("Tracker session id function"),
    _(
        "Where the script reads the visitor's session id: the platform tracker's function on the "
        "page."
    ),
)
MESSENGER_MAP = FieldText(MESSENGERS.title)
LINKS_TELEGRAM = FieldText(
    _("Telegram: add the code to the bot's links"),
    _(
        "Off by default. Check before relying on it: Bitrix24's code suggests that a start "
        "code that is not Bitrix24's own may skip the open line's “create a lead (deal) when "
        "the dialog starts” step; this was not seen on a live portal. Switch it on, start a "
        "chat from the link on your site once, and check that a lead or deal appears in "
        "Bitrix24 and the chat in Raw data with your campaign."
    ),
)
LINKS_TELEGRAM_BOT = FieldText(
    _("Telegram bot username"),
    _(
        "The bot connected to the open line, e.g. @shop_support_bot or a link "
        "https://t.me/shop_support_bot: only links to this bot get the code."
    ),
)
LINKS_WHATSAPP = FieldText(_("WhatsApp: add the code to the prefilled text"))
LINKS_WHATSAPP_NUMBER = FieldText(
    _("WhatsApp number"),
    _(
        "The number of the links to mark, e.g. +7 (999) 123-45-67 (kept as digits). Empty: "
        "every WhatsApp link on the page."
    ),
)
LINKS_WHATSAPP_TEXT = FieldText(
    _("WhatsApp text"),
    _(
        "The message prefilled before the code, for links without a text of their own; the "
        "code goes at the end, e.g. “… [#K7PM2QXA]”. Empty: “Здравствуйте! Пишу с сайта”."
    ),
)
LINKS_VIBER = FieldText(_("Viber: add the code to the prefilled text"))
LINKS_VIBER_URI = FieldText(
    _("Viber bot chat URI"),
    _(
        "The chatURI of the bot's links (viber://pa?chatURI=…); a pasted link is read. Empty: "
        "every Viber bot link on the page."
    ),
)
LINKS_VIBER_TEXT = FieldText(_("Viber text"), LINKS_WHATSAPP_TEXT.help)

# --- choices -------------------------------------------------------------------------------

ENTITIES = {"lead": _("Lead"), "deal": _("Deal")}
PLANS = {"standard": _("Standard"), "enterprise": _("Enterprise")}
TRAFFIC_TYPES = {"source": SOURCE_ID.label, "campaign": CAMPAIGN_ID.label}
NOT_SELECTED = _("— not selected —")
DEFAULT = _("Default")
NO_IMPORT = _("No, only new ones")
SWITCH_ON = _("On")
SWITCH_OFF = _("Off")


def import_days(days: int) -> LocalizedText:
    return ngettext("The last %(num)d day", "The last %(num)d days", days)


# --- errors --------------------------------------------------------------------------------

REQUIRED = _("Required while the integration is active")
NOT_A_NUMBER = _("Expected a whole number")
NOT_IN_CATALOG = {
    "employees": _("No such employee in the account"),
    "sources": _("No such source in the account"),
    "sites": _("No such site in the account"),
    "campaigns": _("No such ad campaign in the account"),
}
WRONG_TRAFFIC_TYPE = {
    "source": _(
        "The traffic type is Source: map the messenger to a source and site, not a campaign"
    ),
    "campaign": _("The traffic type is Ad campaign: map the messenger to a campaign, not a source"),
}
SITE_WITHOUT_SOURCE = _("Choose a source: a site goes together with a source")
_EXPECTED_YES_OR_NO = _("Expected yes or no")
_EXPECTED_AN_OBJECT = _("Expected an object")
PYDANTIC_ERRORS = {  # by pydantic's error type
    "extra_forbidden": _("Unknown setting"),
    "int_parsing": NOT_A_NUMBER,
    "int_type": NOT_A_NUMBER,
    "int_from_float": NOT_A_NUMBER,
    "bool_parsing": _EXPECTED_YES_OR_NO,
    "bool_type": _EXPECTED_YES_OR_NO,
    "string_type": _("Expected text"),
    "dict_type": _EXPECTED_AN_OBJECT,
    "model_type": _EXPECTED_AN_OBJECT,
    "model_attributes_type": _EXPECTED_AN_OBJECT,
}
CONNECTOR_ID = _("A connector id is lower-case latin letters, digits, '_' and '-', up to 64")
CLIENT_ID_FORMAT = _(
    "An application ID has no spaces and up to 100 characters, e.g. local.64ccbcf7db22b1.98148679",
)
SECRET_FORMAT = _("Latin letters, digits and signs, no spaces, up to 200 characters")
ADDRESS_TOO_LONG = _("The address is too long")
SITE_DOMAINS_FORMAT = _("List bare domains separated by commas, e.g. shop.example.ru")
IMPORT_DAYS_CHOICE = _("Choose a number of days from the list")
TRACKER_GETTER_FORMAT = _("A path to a function like analyticsHost.getSessionId")
TELEGRAM_BOT_FORMAT = _(
    "A bot's username is 5 to 32 latin letters, digits and '_' and ends in 'bot', e.g. "
    "shop_support_bot"
)
TELEGRAM_BOT_REQUIRED = _("Enter the bot's username: the script marks the links to this bot")
WHATSAPP_NUMBER_FORMAT = _("A phone number in international format, e.g. +7 999 123-45-67")
VIBER_URI_FORMAT = _("A chat URI is latin letters, digits, '_', '-' and '.', e.g. shopsupport")


def link_text_too_long(limit: int) -> LocalizedText:
    return _("At most %(limit)d characters", limit=limit)


def allowed_values(expected: str) -> LocalizedText:
    return _("Allowed values: %(expected)s", expected=expected)


def invalid_value(pydantic_message: str) -> LocalizedText:
    """Pydantic's own words in English; in Russian, ours."""
    return LocalizedText(ru=_("Invalid value").ru, en=pydantic_message)


# --- notes: what the settings changed in what was typed ------------------------------------


def portal_trimmed(address: str, dropped: str) -> LocalizedText:
    return _(
        "Kept only the portal's address %(address)s: '%(dropped)s' is not needed.",
        address=address,
        dropped=dropped,
    )


# --- the status and the import -------------------------------------------------------------

OFF = _("The integration is off")
NOT_CONNECTED = _(
    "The portal is not connected yet: open the authorization URL and allow the application access.",
)
SCRIPT_AFTER_SAVING = _("The script appears here once the settings are saved.")


def fill_in(labels: list[LocalizedText]) -> LocalizedText:
    return _("Fill in: %(fields)s", fields=join(labels))


def fix(labels: list[LocalizedText]) -> LocalizedText:
    return _("Fix: %(fields)s", fields=join(labels))


def connected(domain: str) -> LocalizedText:
    return _("Connected to %(domain)s", domain=domain)


def missing_scopes(domain: str, names: str) -> LocalizedText:
    return _(
        "Connected to %(domain)s, but the application lacks the scopes: %(names)s. Add them in "
        "the local application and connect the portal again.",
        domain=domain,
        names=names,
    )


def link_figures(channel: LocalizedText, clicks: int, chats: int) -> LocalizedText:
    """One channel's line of the last 7 days: its links clicked, its chats with a code."""
    return _(
        "%(channel)s — %(clicks)s, %(chats)s",
        channel=channel,
        clicks=ngettext("%(num)d click", "%(num)d clicks", clicks),
        chats=ngettext("%(num)d chat with the code", "%(num)d chats with the code", chats),
    )


def links_week(lines: list[LocalizedText]) -> LocalizedText:
    return _("The last 7 days: %(lines)s.", lines=join(lines, "; "))


LINKS_NONE_ON = _("No messenger is switched on: the site's messenger links stay as they are.")
CHANNELS = {"telegram": same("Telegram"), "whatsapp": same("WhatsApp"), "viber": same("Viber")}


def imported(days: int, seen: int) -> LocalizedText:
    return ngettext(
        "Imported the chats of the %(num)d day before connecting: %(seen)d",
        "Imported the chats of the %(num)d days before connecting: %(seen)d",
        days,
        seen=seen,
    )


def importing(days: int, seen: int, total: int | None) -> LocalizedText:
    if total is None:
        return ngettext(
            "Importing the chats of the %(num)d day before connecting: %(seen)d",
            "Importing the chats of the %(num)d days before connecting: %(seen)d",
            days,
            seen=seen,
        )
    return ngettext(
        "Importing the chats of the %(num)d day before connecting: %(seen)d of %(total)d",
        "Importing the chats of the %(num)d days before connecting: %(seen)d of %(total)d",
        days,
        seen=seen,
        total=total,
    )
