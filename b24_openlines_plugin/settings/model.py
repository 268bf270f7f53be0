"""The settings of one integration as one pydantic model: the form, formats, what is stored.

Every field of ``B24Settings`` carries a ``FormMeta`` (section, label and help, choices, when it
is shown, when it is required), from which the view generates the page, so the page, the JSON
API and what is stored cannot drift apart. The model checks each value on its own (types,
formats, the portal address); what needs the whole picture is in ``validation``.

Secrets (client secret, application token) are write-only: never echoed back, and handed to the
host only as ``SecretStr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from b24_openlines_plugin.connectors import CONNECTOR_ID_PATTERN, CONNECTORS
from b24_openlines_plugin.portal import PortalAddressError, normalize_portal, parse_portal
from b24_openlines_plugin.settings import texts
from b24_openlines_plugin.settings.texts import FieldText
from b24_openlines_plugin.site_script import MessengerLink
from hooks.models import FieldKind, LocalizedText, ShowWhen
from hooks.services import MessengerChannel

MASK = "********"
SECRET_KEYS = ("client_secret", "application_token")
DEFAULT_IMPORT_DAYS = 7
DEFAULT_TRACKER_GETTER = "analyticsHost.getSessionId"

SectionId = Literal[
    "credentials",
    "activation",
    "webhook",
    "employee",
    "traffic",
    "messengers",
    "messenger_links",
    "script",
]
CatalogList = Literal["employees", "sources", "sites", "campaigns"]


@dataclass(frozen=True, eq=False)
class FormMeta:
    """How a settings field appears on the page, and when an active integration needs it.

    ``catalog`` names the account list a select chooses from (and whose ids are valid);
    ``options`` are the fixed choices of a radio; ``show_when`` hides the field unless another
    one has a value, and a hidden field is never required; ``required_with`` names a switch
    that needs the field. ``kind="table"`` expands into one row per connector.
    """

    section: SectionId
    kind: FieldKind | Literal["table"]
    text: FieldText
    catalog: CatalogList | None = None
    options: tuple[tuple[str, LocalizedText], ...] = ()
    empty_choice: LocalizedText | None = None
    show_when: ShowWhen | None = None
    required_when_active: bool = False
    required_with: str | None = None  # required while this switch is on, active or not

    @property
    def label(self) -> LocalizedText:
        return self.text.label

    @property
    def help(self) -> LocalizedText | None:
        return self.text.help


WHEN_SOURCE = ShowWhen(key="traffic_type", equals="source")
# An on/off switch as a radio pair: an unticked checkbox is absent from a form, which would
# leave a switch that is on by default on.
SWITCH = (("True", texts.SWITCH_ON), ("False", texts.SWITCH_OFF))
WHEN_CAMPAIGN = ShowWhen(key="traffic_type", equals="campaign")
IMPORT_DAYS = (
    ("0", texts.NO_IMPORT),
    *((str(days), texts.import_days(days)) for days in (1, 3, 7, 14, 30)),
)
ERROR_TYPE = "b24_settings"
DEFAULT_LINK_TEXT = "Здравствуйте! Пишу с сайта"
"""The prefilled WhatsApp and Viber text before the code (`` [#K7PM2QXA]``) when the settings
give none: the clients' visitors write in Russian, whatever the host's language."""
MAX_LINK_TEXT = 300
_TELEGRAM_PREFIX = re.compile(
    r"^(?:(?:https?://)?(?:www\.)?(?:t|telegram)\.me/|tg://resolve\?domain=|@)", re.IGNORECASE
)
_TELEGRAM_BOT = re.compile(r"[A-Za-z0-9_]{2,29}bot", re.IGNORECASE)  # 5 to 32 characters
_PHONE_SIGNS = re.compile(r"[\s+()\-.]")
_WHATSAPP_LINK = re.compile(
    r"^(?:https?://)?(?:www\.)?(?:wa\.me/|api\.whatsapp\.com/send/?\?phone=)", re.IGNORECASE
)
_VIBER_LINK = re.compile(r"^viber://pa\?(?:.*&)?chaturi=([^&#]*)", re.IGNORECASE)
_VIBER_URI = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
_JS_PATH = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*")


def invalid(message: LocalizedText) -> PydanticCustomError:
    """A validation error that carries its ru/en message through pydantic."""
    return PydanticCustomError(ERROR_TYPE, "{en}", {"ru": message.ru, "en": message.en})


def _reject_bool(value: object) -> object:
    # pydantic's lax mode reads true as 1, which would quietly pick catalog item 1.
    if isinstance(value, bool):
        raise invalid(texts.NOT_A_NUMBER)
    return value


def _check_connector_id(value: str) -> str:
    if not CONNECTOR_ID_PATTERN.fullmatch(value):
        raise invalid(texts.CONNECTOR_ID)
    return value


CatalogId = Annotated[int, BeforeValidator(_reject_bool)]
ConnectorId = Annotated[str, AfterValidator(_check_connector_id)]


def clean(value: Any) -> Any:
    """Strip strings; an empty string, null or empty object means "not given" and is dropped.

    This is what makes an HTML form (strings, empty inputs) and the JSON API (real types,
    nulls) land on the same settings.
    """
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        cleaned = ((str(key), clean(item)) for key, item in value.items())
        return {key: item for key, item in cleaned if item is not None and item != {}}
    return value


class _Model(BaseModel):
    # hide_input_in_errors: a rejected secret must not reach a log through str(error).
    # frozen: parsed settings are shared between the deliveries of a drain (``stored_settings``).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


def _catalog_select(
    section: SectionId,
    text: FieldText,
    catalog: CatalogList,
    empty_choice: LocalizedText,
    show_when: ShowWhen | None = None,
    *,
    required_when_active: bool = False,
) -> FormMeta:
    return FormMeta(
        section,
        "select",
        text,
        catalog=catalog,
        empty_choice=empty_choice,
        show_when=show_when,
        required_when_active=required_when_active,
    )


class MessengerRow(_Model):
    """Where chats from one messenger go when their visitor session is unknown."""

    source_id: Annotated[
        CatalogId | None,
        _catalog_select("messengers", texts.SOURCE_ID, "sources", texts.DEFAULT, WHEN_SOURCE),
    ] = None
    site_id: Annotated[
        CatalogId | None,
        _catalog_select("messengers", texts.SITE_ID, "sites", texts.DEFAULT, WHEN_SOURCE),
    ] = None
    campaign_id: Annotated[
        CatalogId | None,
        _catalog_select("messengers", texts.CAMPAIGN_ID, "campaigns", texts.DEFAULT, WHEN_CAMPAIGN),
    ] = None


class B24Settings(_Model):
    """The settings of one Bitrix24 Open Lines integration; field order is the page's order."""

    client_id: Annotated[
        str | None,
        FormMeta("credentials", "text", texts.CLIENT_ID, required_when_active=True),
    ] = None
    client_secret: Annotated[
        SecretStr | None,
        FormMeta("credentials", "secret", texts.CLIENT_SECRET, required_when_active=True),
    ] = None
    portal: Annotated[
        str | None,
        FormMeta("credentials", "text", texts.PORTAL, required_when_active=True),
    ] = None
    active: Annotated[bool, FormMeta("activation", "checkbox", texts.ACTIVE)] = False
    entity: Annotated[
        Literal["lead", "deal"],
        FormMeta("activation", "radio", texts.ENTITY, options=tuple(texts.ENTITIES.items())),
    ] = "lead"
    import_days: Annotated[
        int,
        BeforeValidator(_reject_bool),
        FormMeta("activation", "select", texts.IMPORT_DAYS, options=IMPORT_DAYS),
    ] = DEFAULT_IMPORT_DAYS
    plan: Annotated[
        Literal["standard", "enterprise"],
        FormMeta("credentials", "radio", texts.PLAN, options=tuple(texts.PLANS.items())),
    ] = "standard"
    application_token: Annotated[
        SecretStr | None, FormMeta("webhook", "secret", texts.APPLICATION_TOKEN)
    ] = None
    employee_id: Annotated[
        CatalogId | None,
        _catalog_select(
            "employee",
            texts.EMPLOYEE_ID,
            "employees",
            texts.NOT_SELECTED,
            required_when_active=True,
        ),
    ] = None
    traffic_type: Annotated[
        Literal["source", "campaign"],
        FormMeta(
            "traffic", "radio", texts.TRAFFIC_TYPE, options=tuple(texts.TRAFFIC_TYPES.items())
        ),
    ] = "source"
    source_id: Annotated[
        CatalogId | None,
        _catalog_select(
            "traffic",
            texts.SOURCE_ID,
            "sources",
            texts.NOT_SELECTED,
            WHEN_SOURCE,
            required_when_active=True,
        ),
    ] = None
    site_id: Annotated[
        CatalogId | None,
        _catalog_select(
            "traffic",
            texts.SITE_ID,
            "sites",
            texts.NOT_SELECTED,
            WHEN_SOURCE,
            required_when_active=True,
        ),
    ] = None
    campaign_id: Annotated[
        CatalogId | None,
        _catalog_select(
            "traffic",
            texts.CAMPAIGN_ID,
            "campaigns",
            texts.NOT_SELECTED,
            WHEN_CAMPAIGN,
            required_when_active=True,
        ),
    ] = None
    site_domains: Annotated[str | None, FormMeta("script", "text", texts.SITE_DOMAINS)] = None
    tracker_getter: Annotated[str, FormMeta("script", "text", texts.TRACKER_GETTER)] = (
        DEFAULT_TRACKER_GETTER
    )
    messenger_map: Annotated[
        dict[ConnectorId, MessengerRow],
        FormMeta("messengers", "table", texts.MESSENGER_MAP),
    ] = {}
    # Off by default: a start code not Bitrix24's own may skip its "create a lead" step.
    links_telegram: Annotated[
        bool, FormMeta("messenger_links", "radio", texts.LINKS_TELEGRAM, options=SWITCH)
    ] = False
    links_telegram_bot: Annotated[
        str | None,
        FormMeta(
            "messenger_links",
            "text",
            texts.LINKS_TELEGRAM_BOT,
            required_with="links_telegram",
        ),
    ] = None
    links_whatsapp: Annotated[
        bool, FormMeta("messenger_links", "radio", texts.LINKS_WHATSAPP, options=SWITCH)
    ] = True
    links_whatsapp_number: Annotated[
        str | None, FormMeta("messenger_links", "text", texts.LINKS_WHATSAPP_NUMBER)
    ] = None
    links_whatsapp_text: Annotated[
        str | None, FormMeta("messenger_links", "text", texts.LINKS_WHATSAPP_TEXT)
    ] = None
    links_viber: Annotated[
        bool, FormMeta("messenger_links", "radio", texts.LINKS_VIBER, options=SWITCH)
    ] = True
    links_viber_uri: Annotated[
        str | None, FormMeta("messenger_links", "text", texts.LINKS_VIBER_URI)
    ] = None
    links_viber_text: Annotated[
        str | None, FormMeta("messenger_links", "text", texts.LINKS_VIBER_TEXT)
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _empty_means_absent(cls, data: Any) -> Any:
        return clean(data) if isinstance(data, Mapping) else data

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 100 or any(c.isspace() for c in value)):
            raise invalid(texts.CLIENT_ID_FORMAT)
        return value

    @field_validator("client_secret", "application_token")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        if len(secret) > 200 or not (secret.isascii() and secret.isprintable()) or " " in secret:
            raise invalid(texts.SECRET_FORMAT)
        return value

    @field_validator("portal")
    @classmethod
    def _check_portal(cls, value: str | None) -> str | None:
        """Kept as entered, or as its address when a path came with it; ``portal_url`` is the
        normalised form."""
        if value is None:
            return None
        if len(value) > 2000:
            raise invalid(texts.ADDRESS_TOO_LONG)
        try:
            portal = parse_portal(value)
        except PortalAddressError as exc:
            raise invalid(exc.message) from exc
        return portal.url if portal.dropped else value

    @field_validator("site_domains")
    @classmethod
    def _check_site_domains(cls, value: str | None) -> str | None:
        """Kept as a tidy comma-separated list; each entry must be a bare host name."""
        if value is None:
            return None
        hosts = [part.strip().lower() for part in re.split(r"[,\s]+", value) if part.strip()]
        bad = [h for h in hosts if not _HOST_NAME.fullmatch(h)]
        if bad or len(hosts) > 50:
            raise invalid(texts.SITE_DOMAINS_FORMAT)
        return ", ".join(dict.fromkeys(hosts)) or None

    @field_validator("import_days")
    @classmethod
    def _check_import_days(cls, value: int) -> int:
        if str(value) not in {days for days, _ in IMPORT_DAYS}:
            raise invalid(texts.IMPORT_DAYS_CHOICE)
        return value

    @field_validator("tracker_getter")
    @classmethod
    def _check_tracker_getter(cls, value: str) -> str:
        if not _JS_PATH.fullmatch(value) or len(value) > 200:
            raise invalid(texts.TRACKER_GETTER_FORMAT)
        return value

    @field_validator("links_telegram_bot")
    @classmethod
    def _check_telegram_bot(cls, value: str | None) -> str | None:
        """The bot's username, from ``@name``, ``https://t.me/name?start=…`` or ``name``."""
        if value is None:
            return None
        name = re.split(r"[/?#&]", _TELEGRAM_PREFIX.sub("", value), maxsplit=1)[0]
        if not _TELEGRAM_BOT.fullmatch(name):
            raise invalid(texts.TELEGRAM_BOT_FORMAT)
        return name

    @field_validator("links_whatsapp_number")
    @classmethod
    def _check_whatsapp_number(cls, value: str | None) -> str | None:
        """Digits only, as wa.me links carry the number: ``+7 (999) 123-45-67`` → 79991234567;
        a Russian mobile number written with 8 (``8 999 …``) gets its country code 7."""
        if value is None:
            return None
        number = _PHONE_SIGNS.sub("", _WHATSAPP_LINK.sub("", value).split("&")[0].split("?")[0])
        if not number.isdigit() or not number.isascii() or not 8 <= len(number) <= 15:
            raise invalid(texts.WHATSAPP_NUMBER_FORMAT)
        if len(number) == 11 and number.startswith("89") and "+" not in value:
            number = "7" + number[1:]
        return number

    @field_validator("links_viber_uri")
    @classmethod
    def _check_viber_uri(cls, value: str | None) -> str | None:
        """The bot's chat URI, also from a pasted ``viber://pa?chatURI=…`` link."""
        if value is None:
            return None
        found = _VIBER_LINK.match(value)
        uri = found[1] if found else value
        if not _VIBER_URI.fullmatch(uri):
            raise invalid(texts.VIBER_URI_FORMAT)
        return uri

    @field_validator("links_whatsapp_text", "links_viber_text")
    @classmethod
    def _check_link_text(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_LINK_TEXT:
            raise invalid(texts.link_text_too_long(MAX_LINK_TEXT))
        return value

    @property
    def code_channels(self) -> frozenset[MessengerChannel]:
        """The messengers whose links carry the visit's code: their dialogs are read for one."""
        return frozenset(link.channel for link in self.messenger_links())

    def messenger_links(self) -> tuple[MessengerLink, ...]:
        """The messenger links the site script marks with the visit's code, one per channel on:
        the bot's username, the WhatsApp number's digits or the Viber chat URI (WhatsApp and
        Viber: ``None`` marks every link of the messenger on the page) and the prefilled text."""
        links: list[MessengerLink] = []
        if self.links_telegram and self.links_telegram_bot:
            links.append(MessengerLink("telegram", self.links_telegram_bot, None))
        if self.links_whatsapp:
            text = self.links_whatsapp_text or DEFAULT_LINK_TEXT
            links.append(MessengerLink("whatsapp", self.links_whatsapp_number, text))
        if self.links_viber:
            text = self.links_viber_text or DEFAULT_LINK_TEXT
            links.append(MessengerLink("viber", self.links_viber_uri, text))
        return tuple(links)

    @property
    def site_hosts(self) -> list[str]:
        return self.site_domains.split(", ") if self.site_domains else []

    @property
    def portal_url(self) -> str | None:
        """The address the plugin talks to (``https://host[:port]``), or None before one is set."""
        return normalize_portal(self.portal) if self.portal else None

    def settings_json(self) -> dict[str, Any]:
        """The settings as stored and as the JSON API shows them, without the secrets."""
        return self.model_dump(mode="json", exclude=set(SECRET_KEYS))

    @field_serializer("messenger_map")
    def _rows_without_blanks(self, rows: dict[str, MessengerRow]) -> dict[str, dict[str, int]]:
        # {"source_id", "site_id"} or {"campaign_id"}: only the keys of the traffic type.
        return {connector: row.model_dump(exclude_none=True) for connector, row in rows.items()}


def _field_metas(model: type[BaseModel]) -> tuple[tuple[str, FormMeta], ...]:
    """Each field with its FormMeta; a field without one is a bug, caught at import."""
    found = []
    for name, info in model.model_fields.items():
        metas = [item for item in info.metadata if isinstance(item, FormMeta)]
        if len(metas) != 1:
            raise TypeError(f"{model.__name__}.{name} needs exactly one FormMeta")
        found.append((name, metas[0]))
    return tuple(found)


FIELDS = _field_metas(B24Settings)
ROW_FIELDS = _field_metas(MessengerRow)
META = dict(FIELDS)
KNOWN_CONNECTORS = frozenset(connector.id for connector in CONNECTORS)
