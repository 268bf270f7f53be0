"""Every text of the settings page: sections, fields, choices, errors, status, notes.

The one place the settings' words are written: the model and the view name these constants and
call these functions, and never write a text of their own. The words are messages of the
plugin's catalogs (``b24_openlines_plugin.i18n``), each translated into every language when
the module loads. A field's label and help travel together as a ``FieldText``; a text with
values in it is a function.
"""

from __future__ import annotations

from typing import NamedTuple

from b24_openlines_plugin.i18n import _, join, ngettext
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

# --- choices -------------------------------------------------------------------------------

ENTITIES = {"lead": _("Lead"), "deal": _("Deal")}
PLANS = {"standard": _("Standard"), "enterprise": _("Enterprise")}
TRAFFIC_TYPES = {"source": SOURCE_ID.label, "campaign": CAMPAIGN_ID.label}
NOT_SELECTED = _("— not selected —")
DEFAULT = _("Default")
NO_IMPORT = _("No, only new ones")


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
