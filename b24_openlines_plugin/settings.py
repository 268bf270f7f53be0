"""The plugin's settings: one pydantic model is the form, the validation and the stored value.

Every field of ``B24Settings`` carries a ``FormMeta`` (section, ru/en label, choices, when it is
shown, when it is required) and the settings page is generated from those fields, so the page,
the JSON API and what is stored cannot drift apart. A submission is checked in two passes:

1. the model parses each value on its own: types, formats, the portal address;
2. ``_rule_problems`` checks what needs the whole picture: what an active integration
   requires, ids that exist in the account's catalog, messenger rows that follow the traffic
   type.

As in a Django form, the second pass also runs when the first found errors, over the values
that did parse, so the client sees every problem at once instead of one per attempt.

Secrets (client secret, application token) are write-only: never echoed back, kept when the
field is left empty or still shows the mask, and handed to the host only as ``SecretStr``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple, Protocol
from urllib.parse import urlencode, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from b24_openlines_plugin import REQUIRED_SCOPES
from b24_openlines_plugin.connectors import CONNECTOR_ID_PATTERN, CONNECTORS, connector_label
from b24_openlines_plugin.health import error_status, health_status, problem_text
from b24_openlines_plugin.portal import PortalAddressError, normalize_portal
from b24_openlines_plugin.site_script import render_site_script
from b24_openlines_plugin.state import Connection, connection_of
from hooks.models import (
    Catalog,
    Choice,
    DerivedValues,
    FieldKind,
    FormField,
    FormSection,
    Integration,
    IntegrationHealth,
    Language,
    LocalizedText,
    SettingsView,
    ShowWhen,
    Status,
    StoredSettings,
)
from hooks.services import HostUrls

__all__ = [
    "MASK",
    "SECRET_KEYS",
    "B24Settings",
    "FormMeta",
    "MessengerRow",
    "SettingsHost",
    "build_settings_view",
]

MASK = "********"
SECRET_KEYS = ("client_secret", "application_token")

SectionId = Literal[
    "credentials", "activation", "webhook", "employee", "traffic", "messengers", "script"
]
CatalogList = Literal["employees", "sources", "sites", "campaigns"]


class SettingsHost(Protocol):
    """What the settings need of the host: its URLs, and its language for the site script's
    operator-facing line (``HostServices`` provides both)."""

    @property
    def urls(self) -> HostUrls: ...

    @property
    def language(self) -> Language: ...


def _t(ru: str, en: str) -> LocalizedText:
    return LocalizedText(ru=ru, en=en)


# --- form metadata -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FormMeta:
    """How a settings field appears on the page, and when an active integration needs it.

    ``catalog`` names the account list a select chooses from (and whose ids are valid);
    ``options`` are the fixed choices of a radio; ``show_when`` hides the field unless another
    one has a value, and a hidden field is never required. ``kind="table"`` expands into one
    row per connector.
    """

    section: SectionId
    kind: FieldKind | Literal["table"]
    label: LocalizedText
    help: LocalizedText | None = None
    catalog: CatalogList | None = None
    options: tuple[tuple[str, LocalizedText], ...] = ()
    empty_choice: LocalizedText | None = None
    show_when: ShowWhen | None = None
    required_when_active: bool = False


@dataclass(frozen=True, eq=False)
class _Section:
    id: SectionId
    title: LocalizedText
    help: LocalizedText | None = None  # may name {redirect_url} and {webhook_url}
    layout: Literal["form", "table"] = "form"


_SECTIONS = (
    _Section(
        "credentials",
        _t("Учетные данные", "Credentials"),
        _t(
            "Создайте в Битрикс24 локальное приложение (Разработчикам → Другое → Локальное "
            "приложение). Укажите в нём URL перенаправления {redirect_url} и права: CRM (crm), "
            "Открытые линии (imopenlines), Чат и уведомления (im), Контакт-центр "
            "(contact_center). Введите ниже выданные приложением client id и client secret.",
            "Create a local application in Bitrix24 (Developers → Other → Local application). "
            "Set its redirect URL to {redirect_url} and grant the scopes CRM (crm), Open Lines "
            "(imopenlines), Chat and notifications (im), Contact center (contact_center). Enter "
            "the client id and client secret it issues below.",
        ),
    ),
    _Section("activation", _t("Активация", "Activation")),
    _Section(
        "webhook",
        _t("Webhook", "Webhook"),
        _t(
            "В Битрикс24 настройте исходящий вебхук на событие «Создание лида» (ONCRMLEADADD) "
            "или «Создание сделки» (ONCRMDEALADD) — смотря что создают ваши открытые линии. "
            "В поле «URL вашего обработчика» укажите Webhook URL: {webhook_url}",
            "In Bitrix24, set up an outgoing webhook on the event 'Lead created' (ONCRMLEADADD) "
            "or 'Deal created' (ONCRMDEALADD), whichever your Open Lines create. Enter the "
            "Webhook URL as its handler URL: {webhook_url}",
        ),
    ),
    _Section("employee", _t("Сотрудник", "Employee")),
    _Section(
        "traffic",
        _t("Тип трафика", "Traffic type"),
        _t(
            "Куда относить обращения без сессии, например чаты из мессенджеров.",
            "What appeals without a session, such as chats from messengers, are attributed to.",
        ),
    ),
    _Section(
        "messengers",
        _t("Соответствие мессенджеров и источников", "Messengers and sources"),
        _t(
            "Укажите, в какой источник или рекламную кампанию попадают чаты из мессенджеров с "
            "неопределившейся сессией. «По умолчанию» — значение из раздела «Тип трафика»; "
            "пустой сайт — сайт по умолчанию.",
            "Choose the source or ad campaign that chats from each messenger go to when no "
            "session is found. 'Default' takes the value from 'Traffic type'; an empty site "
            "takes the default site.",
        ),
        layout="table",
    ),
    _Section(
        "script",
        _t("Скрипт для сайта", "Site script"),
        _t(
            "Установите скрипт на всех страницах сайта с виджетом открытых линий Битрикс24, "
            "после кода отслеживания платформы.",
            "Install the script on every page of the site that carries the Bitrix24 Open Lines "
            "widget, after the platform's tracking code.",
        ),
    ),
)

_WHEN_SOURCE = ShowWhen(key="traffic_type", equals="source")
_WHEN_CAMPAIGN = ShowWhen(key="traffic_type", equals="campaign")
_NOT_SELECTED = _t("— не выбрано —", "— not selected —")
DEFAULT_IMPORT_DAYS = 7
_IMPORT_DAYS = (
    ("0", _t("Нет, только новые", "No, only new ones")),
    *((str(d), _t(f"За {d} дн.", f"The last {d} days")) for d in (1, 3, 7, 14, 30)),
)
_DEFAULT = _t("По умолчанию", "Default")

# --- messages ------------------------------------------------------------------------------

_ERROR_TYPE = "b24_settings"
_REQUIRED = _t(
    "Обязательное поле, пока интеграция активна", "Required while the integration is active"
)
_NOT_A_NUMBER = _t("Ожидается целое число", "Expected a whole number")
_NOT_IN_CATALOG: dict[CatalogList, LocalizedText] = {
    "employees": _t("Такого сотрудника нет в аккаунте", "No such employee in the account"),
    "sources": _t("Такого источника нет в аккаунте", "No such source in the account"),
    "sites": _t("Такого сайта нет в аккаунте", "No such site in the account"),
    "campaigns": _t(
        "Такой рекламной кампании нет в аккаунте", "No such ad campaign in the account"
    ),
}
_WRONG_TRAFFIC_TYPE = {
    "source": _t(
        "Тип трафика — «Источник»: укажите для мессенджера источник и сайт, а не кампанию",
        "The traffic type is Source: map the messenger to a source and site, not a campaign",
    ),
    "campaign": _t(
        "Тип трафика — «Рекламная кампания»: укажите для мессенджера кампанию, а не источник",
        "The traffic type is Ad campaign: map the messenger to a campaign, not a source",
    ),
}
_SITE_WITHOUT_SOURCE = _t(
    "Выберите источник: сайт указывается вместе с источником",
    "Choose a source: a site goes together with a source",
)
_PYDANTIC_MESSAGES = {
    "extra_forbidden": _t("Неизвестный параметр", "Unknown setting"),
    "int_parsing": _NOT_A_NUMBER,
    "int_type": _NOT_A_NUMBER,
    "int_from_float": _NOT_A_NUMBER,
    "bool_parsing": _t("Ожидается да или нет", "Expected yes or no"),
    "bool_type": _t("Ожидается да или нет", "Expected yes or no"),
    "string_type": _t("Ожидается текст", "Expected text"),
    "dict_type": _t("Ожидается объект", "Expected an object"),
    "model_type": _t("Ожидается объект", "Expected an object"),
    "model_attributes_type": _t("Ожидается объект", "Expected an object"),
}
_SCRIPT_NOTE = _t(
    "Скрипт появится здесь после сохранения настроек.",
    "The script appears here once the settings are saved.",
)
DEFAULT_TRACKER_GETTER = "analyticsHost.getSessionId"
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
_JS_PATH = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*")


def _invalid(message: LocalizedText) -> PydanticCustomError:
    """A validation error that carries its ru/en message through pydantic."""
    return PydanticCustomError(_ERROR_TYPE, "{en}", {"ru": message.ru, "en": message.en})


# --- the model -----------------------------------------------------------------------------


def _reject_bool(value: object) -> object:
    # pydantic's lax mode reads true as 1, which would quietly pick catalog item 1.
    if isinstance(value, bool):
        raise _invalid(_NOT_A_NUMBER)
    return value


def _check_connector_id(value: str) -> str:
    if not CONNECTOR_ID_PATTERN.fullmatch(value):
        raise _invalid(
            _t(
                "Код коннектора: латинские строчные буквы, цифры, «_» и «-», до 64 символов",
                "A connector id is lower-case latin letters, digits, '_' and '-', up to 64",
            )
        )
    return value


CatalogId = Annotated[int, BeforeValidator(_reject_bool)]
ConnectorId = Annotated[str, AfterValidator(_check_connector_id)]


def _clean(value: Any) -> Any:
    """Strip strings; an empty string, null or empty object means "not given" and is dropped.

    This is what makes an HTML form (strings, empty inputs) and the JSON API (real types,
    nulls) land on the same settings.
    """
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        cleaned = ((str(key), _clean(item)) for key, item in value.items())
        return {key: item for key, item in cleaned if item is not None and item != {}}
    return value


class _Model(BaseModel):
    # hide_input_in_errors: a rejected secret must not reach a log through str(error).
    # frozen: parsed settings are shared between the deliveries of a drain (``stored_settings``).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class MessengerRow(_Model):
    """Where chats from one messenger go when their visitor session is unknown."""

    source_id: Annotated[
        CatalogId | None,
        FormMeta(
            "messengers",
            "select",
            _t("Источник", "Source"),
            catalog="sources",
            empty_choice=_DEFAULT,
            show_when=_WHEN_SOURCE,
        ),
    ] = None
    site_id: Annotated[
        CatalogId | None,
        FormMeta(
            "messengers",
            "select",
            _t("Сайт", "Site"),
            catalog="sites",
            empty_choice=_DEFAULT,
            show_when=_WHEN_SOURCE,
        ),
    ] = None
    campaign_id: Annotated[
        CatalogId | None,
        FormMeta(
            "messengers",
            "select",
            _t("Рекламная кампания", "Ad campaign"),
            catalog="campaigns",
            empty_choice=_DEFAULT,
            show_when=_WHEN_CAMPAIGN,
        ),
    ] = None


class B24Settings(_Model):
    """The settings of one Bitrix24 Open Lines integration; field order is the page's order."""

    client_id: Annotated[
        str | None,
        FormMeta(
            "credentials",
            "text",
            _t("Client ID", "Client ID"),
            _t(
                "Из карточки локального приложения, например local.64ccbcf7db22b1.98148679",
                "From the local application's card, e.g. local.64ccbcf7db22b1.98148679",
            ),
            required_when_active=True,
        ),
    ] = None
    client_secret: Annotated[
        SecretStr | None,
        FormMeta(
            "credentials",
            "secret",
            _t("Client secret", "Client secret"),
            _t(
                "Ключ из той же карточки. Сохранённый ключ не показывается: оставьте поле "
                "пустым, чтобы его не менять.",
                "The key from the same card. A saved key is never shown: leave the field "
                "empty to keep it.",
            ),
            required_when_active=True,
        ),
    ] = None
    portal: Annotated[
        str | None,
        FormMeta(
            "credentials",
            "text",
            _t("Адрес портала Битрикс24", "Bitrix24 portal address"),
            _t(
                "Например name.bitrix24.ru или свой домен b24.example.ru. Можно вставить "
                "Authorization URL целиком, заменив в нём YOURDOMAIN на адрес портала.",
                "E.g. name.bitrix24.ru or a custom domain such as b24.example.ru. You may paste "
                "the whole Authorization URL after replacing YOURDOMAIN with your portal.",
            ),
            required_when_active=True,
        ),
    ] = None
    active: Annotated[
        bool,
        FormMeta(
            "activation",
            "checkbox",
            _t("Интеграция активна", "Integration active"),
            _t(
                "Пока интеграция выключена, можно сохранить неполные настройки; чаты не "
                "передаются.",
                "While the integration is off, incomplete settings can be saved; no chats are "
                "carried over.",
            ),
        ),
    ] = False
    entity: Annotated[
        Literal["lead", "deal"],
        FormMeta(
            "activation",
            "radio",
            _t("Сущность, которую создаёт чат", "Entity a chat creates"),
            _t(
                "Что создают ваши открытые линии по новому чату: лид (событие ONCRMLEADADD) "
                "или сделку (ONCRMDEALADD).",
                "What your Open Lines create for a new chat: a lead (event ONCRMLEADADD) or a "
                "deal (ONCRMDEALADD).",
            ),
            options=(("lead", _t("Лид", "Lead")), ("deal", _t("Сделка", "Deal"))),
        ),
    ] = "lead"
    import_days: Annotated[
        int,
        BeforeValidator(_reject_bool),
        FormMeta(
            "activation",
            "select",
            _t("Загрузить прошлые чаты", "Import past chats"),
            _t(
                "При подключении портала загружаются диалоги открытых линий за это число дней "
                "до подключения; ход загрузки виден в статусе выше.",
                "On connecting the portal, the Open Lines dialogs of this many days before are "
                "imported; the status above shows how far it got.",
            ),
            options=_IMPORT_DAYS,
        ),
    ] = DEFAULT_IMPORT_DAYS
    plan: Annotated[
        Literal["standard", "enterprise"],
        FormMeta(
            "credentials",
            "radio",
            _t("Тариф Битрикс24", "Bitrix24 plan"),
            _t(
                "Сколько запросов в секунду разрешает портал: 2 (до 50 подряд) на обычных "
                "тарифах, 5 (до 250 подряд) на «Энтерпрайз».",
                "How many requests per second the portal allows: 2 (bursts of 50) on most "
                "plans, 5 (bursts of 250) on Enterprise.",
            ),
            options=(
                ("standard", _t("Обычный", "Standard")),
                ("enterprise", _t("Энтерпрайз", "Enterprise")),
            ),
        ),
    ] = "standard"
    application_token: Annotated[
        SecretStr | None,
        FormMeta(
            "webhook",
            "secret",
            _t("Токен приложения (application_token)", "Application token"),
            _t(
                "Необязательно. Токен со страницы исходящего вебхука в Битрикс24: по нему "
                "проверяется, что событие пришло от вашего портала. Сохранённый токен не "
                "показывается.",
                "Optional. The token shown on Bitrix24's outgoing webhook page: it proves an "
                "event comes from your portal. A saved token is never shown.",
            ),
        ),
    ] = None
    employee_id: Annotated[
        CatalogId | None,
        FormMeta(
            "employee",
            "select",
            _t("Сотрудник", "Employee"),
            _t(
                "Сотрудник, который будет указан в переписке чата.",
                "The employee shown as the operator of the chat's appeal.",
            ),
            catalog="employees",
            empty_choice=_NOT_SELECTED,
            required_when_active=True,
        ),
    ] = None
    traffic_type: Annotated[
        Literal["source", "campaign"],
        FormMeta(
            "traffic",
            "radio",
            _t("Тип трафика", "Traffic type"),
            options=(
                ("source", _t("Источник", "Source")),
                ("campaign", _t("Рекламная кампания", "Ad campaign")),
            ),
        ),
    ] = "source"
    source_id: Annotated[
        CatalogId | None,
        FormMeta(
            "traffic",
            "select",
            _t("Источник", "Source"),
            catalog="sources",
            empty_choice=_NOT_SELECTED,
            show_when=_WHEN_SOURCE,
            required_when_active=True,
        ),
    ] = None
    site_id: Annotated[
        CatalogId | None,
        FormMeta(
            "traffic",
            "select",
            _t("Сайт", "Site"),
            catalog="sites",
            empty_choice=_NOT_SELECTED,
            show_when=_WHEN_SOURCE,
            required_when_active=True,
        ),
    ] = None
    campaign_id: Annotated[
        CatalogId | None,
        FormMeta(
            "traffic",
            "select",
            _t("Рекламная кампания", "Ad campaign"),
            catalog="campaigns",
            empty_choice=_NOT_SELECTED,
            show_when=_WHEN_CAMPAIGN,
            required_when_active=True,
        ),
    ] = None
    site_domains: Annotated[
        str | None,
        FormMeta(
            "script",
            "text",
            _t("Домены сайта", "Site domains"),
            _t(
                "Через запятую: сайты, где стоит скрипт (например shop.example.ru). Только с них "
                "принимаются сообщения скрипта. Пусто — домены сайтов из вашего кабинета.",
                "Comma-separated: the sites that carry the script (e.g. shop.example.ru). Only "
                "they may report to the host. Empty: the domains of your account's sites.",
            ),
        ),
    ] = None
    tracker_getter: Annotated[
        str,
        FormMeta(
            "script",
            "text",
            _t("Функция ID сессии трекера", "Tracker session id function"),
            _t(
                "Откуда скрипт берёт ID сессии посетителя: функция трекера платформы на странице.",
                "Where the script reads the visitor's session id: the platform tracker's "
                "function on the page.",
            ),
        ),
    ] = DEFAULT_TRACKER_GETTER
    messenger_map: Annotated[
        dict[ConnectorId, MessengerRow],
        FormMeta(
            "messengers",
            "table",
            _t("Соответствие мессенджеров и источников", "Messengers and sources"),
        ),
    ] = {}

    @model_validator(mode="before")
    @classmethod
    def _empty_means_absent(cls, data: Any) -> Any:
        return _clean(data) if isinstance(data, Mapping) else data

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 100 or any(c.isspace() for c in value)):
            raise _invalid(
                _t(
                    "Client ID — без пробелов, до 100 символов, например "
                    "local.64ccbcf7db22b1.98148679",
                    "A client ID has no spaces and up to 100 characters, e.g. "
                    "local.64ccbcf7db22b1.98148679",
                )
            )
        return value

    @field_validator("client_secret", "application_token")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        if len(secret) > 200 or not (secret.isascii() and secret.isprintable()) or " " in secret:
            raise _invalid(
                _t(
                    "Латинские буквы, цифры и знаки, без пробелов, до 200 символов",
                    "Latin letters, digits and signs, no spaces, up to 200 characters",
                )
            )
        return value

    @field_validator("portal")
    @classmethod
    def _check_portal(cls, value: str | None) -> str | None:
        """Kept as entered; ``portal_url`` is the normalised form."""
        if value is None:
            return None
        if len(value) > 2000:
            raise _invalid(_t("Слишком длинный адрес", "The address is too long"))
        try:
            normalize_portal(value)
        except PortalAddressError as exc:
            raise _invalid(exc.message) from exc
        return value

    @field_validator("site_domains")
    @classmethod
    def _check_site_domains(cls, value: str | None) -> str | None:
        """Kept as a tidy comma-separated list; each entry must be a bare host name."""
        if value is None:
            return None
        hosts = [part.strip().lower() for part in re.split(r"[,\s]+", value) if part.strip()]
        bad = [h for h in hosts if not _HOST_NAME.fullmatch(h)]
        if bad or len(hosts) > 50:
            raise _invalid(
                _t(
                    "Укажите только домены через запятую, например shop.example.ru",
                    "List bare domains separated by commas, e.g. shop.example.ru",
                )
            )
        return ", ".join(dict.fromkeys(hosts)) or None

    @field_validator("import_days")
    @classmethod
    def _check_import_days(cls, value: int) -> int:
        if str(value) not in {days for days, _ in _IMPORT_DAYS}:
            raise _invalid(
                _t("Выберите число дней из списка", "Choose a number of days from the list")
            )
        return value

    @field_validator("tracker_getter")
    @classmethod
    def _check_tracker_getter(cls, value: str) -> str:
        if not _JS_PATH.fullmatch(value) or len(value) > 200:
            raise _invalid(
                _t(
                    "Путь к функции вида analyticsHost.getSessionId",
                    "A path to a function like analyticsHost.getSessionId",
                )
            )
        return value

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


_FIELDS = _field_metas(B24Settings)
_ROW_FIELDS = _field_metas(MessengerRow)
_META = dict(_FIELDS)
_KNOWN_CONNECTORS = frozenset(connector.id for connector in CONNECTORS)
_BOOL: TypeAdapter[bool] = TypeAdapter(bool)

# --- parsing and rules ---------------------------------------------------------------------


def _error_key(loc: tuple[int | str, ...]) -> str:
    # A bad dict key is reported at (..., "<key>", "[key]"): the key itself is the field.
    parts = [str(part) for part in loc if part != "[key]"]
    return ".".join(parts)


def _message(error: ErrorDetails) -> LocalizedText:
    ctx = error.get("ctx") or {}
    if error["type"] == _ERROR_TYPE:
        return _t(str(ctx["ru"]), str(ctx["en"]))
    if error["type"] == "literal_error":
        expected = ctx.get("expected", "")
        return _t(f"Допустимые значения: {expected}", f"Allowed values: {expected}")
    return _PYDANTIC_MESSAGES.get(error["type"]) or _t("Недопустимое значение", error["msg"])


def _parse(
    data: Mapping[str, Any],
) -> tuple[B24Settings, dict[str, LocalizedText], dict[tuple[str, ...], Any]]:
    """Validate; what fails is dropped and the rest validated again, so rules can still run.

    Returns the settings that parsed, the errors by dotted key, and the dropped raw values by
    path (a top-level key, or one messenger row) so the form can show what was typed.
    """
    remaining: dict[str, Any] = _clean(data)
    errors: dict[str, LocalizedText] = {}
    dropped: dict[tuple[str, ...], Any] = {}
    while True:
        try:
            return B24Settings.model_validate(remaining), errors, dropped
        except ValidationError as exc:
            progressed = False
            for error in exc.errors():
                errors.setdefault(_error_key(error["loc"]), _message(error))
                path = tuple(str(part) for part in error["loc"][:2])
                path = path if path[0] == "messenger_map" and len(path) == 2 else path[:1]
                parent = remaining.get(path[0]) if len(path) == 2 else remaining
                if isinstance(parent, dict) and path[-1] in parent:
                    dropped[path] = parent.pop(path[-1])
                    progressed = True
            if not progressed:  # nothing left to drop: never loop forever
                return B24Settings(), errors, dropped


class _Problem(NamedTuple):
    key: str
    text: LocalizedText
    missing: bool = False


def _catalog_items(catalog: Catalog, which: CatalogList) -> list[tuple[int, str]]:
    """(id, label) of one catalog list: the select's choices and the ids a field may hold."""
    if which == "employees":
        return [(item.id, item.name) for item in catalog.employees]
    if which == "sources":
        return [(item.id, item.name) for item in catalog.sources]
    if which == "sites":
        return [(item.id, f"{item.name} ({item.domain})") for item in catalog.sites]
    return [(item.id, item.name) for item in catalog.campaigns]


def _is_shown(meta: FormMeta, values: Mapping[str, Any]) -> bool:
    when = meta.show_when
    return when is None or str(values.get(when.key)) == when.equals


def _rule_problems(
    settings: B24Settings, catalog: Catalog, has_client_secret: bool
) -> list[_Problem]:
    """The rules that need more than one value, or the catalog."""
    known = {which: {id_ for id_, _ in _catalog_items(catalog, which)} for which in _NOT_IN_CATALOG}
    values = {"traffic_type": settings.traffic_type}
    problems: list[_Problem] = []
    for name, meta in _FIELDS:
        value = getattr(settings, name)
        given = has_client_secret if name == "client_secret" else value is not None
        if settings.active and meta.required_when_active and _is_shown(meta, values) and not given:
            problems.append(_Problem(name, _REQUIRED, missing=True))
        elif meta.catalog and value is not None and value not in known[meta.catalog]:
            problems.append(_Problem(name, _NOT_IN_CATALOG[meta.catalog]))
    for connector, row in settings.messenger_map.items():
        for name, meta in _ROW_FIELDS:
            value = getattr(row, name)
            key = f"messenger_map.{connector}.{name}"
            if value is None:
                continue
            if not _is_shown(meta, values):
                problems.append(_Problem(key, _WRONG_TRAFFIC_TYPE[settings.traffic_type]))
            elif meta.catalog and value not in known[meta.catalog]:
                problems.append(_Problem(key, _NOT_IN_CATALOG[meta.catalog]))
        if settings.traffic_type == "source" and row.site_id is not None and row.source_id is None:
            problems.append(_Problem(f"messenger_map.{connector}.source_id", _SITE_WITHOUT_SOURCE))
    return problems


# --- the view ------------------------------------------------------------------------------


def build_settings_view(
    integration: Integration,
    catalog: Catalog,
    submitted: Mapping[str, Any] | None,
    host: SettingsHost,
    health: IntegrationHealth | None = None,
) -> SettingsView:
    """The settings page of ``integration``, and the validation of ``submitted`` if given.

    ``submitted`` is nested JSON: from the page (strings; an unticked checkbox is absent) or
    from the JSON API (real types). A valid submission comes back with ``store`` set; one with
    errors has ``errors`` by dotted key, shows what was typed (never secrets) and ``store=None``.
    The derived values describe the settings in force: the new ones once valid, else the
    stored ones.
    """
    page = _Page(integration, catalog, host, health)
    stored, _, _ = _parse(_without_secrets(integration.settings))
    stored_secrets = frozenset(
        key
        for key, value in integration.secrets.items()
        if key in SECRET_KEYS and value.get_secret_value()
    )
    if submitted is None:
        return page.view(stored.settings_json(), stored_secrets, stored, {}, None)

    data = {key: value for key, value in submitted.items() if not _keeps_stored(key, value)}
    settings, errors, dropped = _parse(data)
    has_client_secret = settings.client_secret is not None or "client_secret" in stored_secrets
    if not errors.keys() & {"active", "traffic_type"}:  # the rules hinge on these two
        for problem in _rule_problems(settings, catalog, has_client_secret):
            errors.setdefault(problem.key, problem.text)
    if errors:
        shown = settings.settings_json()
        for path, raw in dropped.items():
            if path[0] in _META and path[0] not in SECRET_KEYS:
                target = shown.setdefault(path[0], {}) if len(path) == 2 else shown
                target[path[-1]] = raw
        return page.view(shown, stored_secrets, stored, errors, None)

    changed = _changed_secrets(settings, integration)
    store = StoredSettings(settings=settings.settings_json(), secrets=changed)
    return page.view(store.settings, stored_secrets | changed.keys(), settings, {}, store)


class _Parsed(NamedTuple):
    settings: dict[str, Any]
    secrets: dict[str, SecretStr]
    parsed: B24Settings


# The last settings parsed per integration: a drain hands the same settings to every one of its
# deliveries, and parsing them (pydantic, portal rules) costs more than the rest of a webhook's
# checks. Kept by value, so equal settings under another object still hit, changed ones miss.
_parsed: dict[int, _Parsed] = {}


def stored_settings(integration: Integration) -> B24Settings:
    """The settings in force, secrets included, for the parts of the plugin that act on them."""
    cached = _parsed.get(integration.id)
    if (
        cached is not None
        and cached.settings == integration.settings
        and cached.secrets == integration.secrets
    ):
        return cached.parsed
    settings, _, _ = _parse(_without_secrets(integration.settings))
    secrets = {key: integration.secrets[key] for key in SECRET_KEYS if key in integration.secrets}
    parsed = settings.model_copy(update=secrets)
    _parsed[integration.id] = _Parsed(
        copy.deepcopy(integration.settings), dict(integration.secrets), parsed
    )
    return parsed


def _without_secrets(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key not in SECRET_KEYS}


def _keeps_stored(key: str, value: Any) -> bool:
    """A secret left empty, null or still showing the mask keeps the stored one."""
    return key in SECRET_KEYS and (
        value is None or (isinstance(value, str) and value.strip() in ("", MASK))
    )


def _changed_secrets(settings: B24Settings, integration: Integration) -> dict[str, SecretStr]:
    changed: dict[str, SecretStr] = {}
    for key in SECRET_KEYS:
        new = getattr(settings, key)
        old = integration.secrets.get(key)
        if isinstance(new, SecretStr) and (
            old is None or old.get_secret_value() != new.get_secret_value()
        ):
            changed[key] = new
    return changed


@dataclass(frozen=True)
class _Page:
    """Builds the SettingsView of one integration."""

    integration: Integration
    catalog: Catalog
    host: SettingsHost
    health: IntegrationHealth | None

    def view(
        self,
        shown: dict[str, Any],
        secrets_set: frozenset[str],
        in_force: B24Settings,
        errors: dict[str, LocalizedText],
        store: StoredSettings | None,
    ) -> SettingsView:
        """``shown``: the settings JSON the fields display; ``in_force``: what derived describes."""
        urls = {
            "webhook_url": self.host.urls.webhook(self.integration),
            "redirect_url": self.host.urls.oauth_redirect(),
        }
        values = {
            name: (MASK if name in secrets_set else None)
            if name in SECRET_KEYS
            else shown.get(name)
            for name, _ in _FIELDS
        }
        portal_url = in_force.portal_url
        connection = connection_of(self.integration)
        script = (
            render_site_script(
                endpoint=self.host.urls.session_report(self.integration.id),
                getter=in_force.tracker_getter,
                language=self.host.language,
            )
            if store is not None or self.integration.settings
            else None
        )
        authorize_url = (
            f"{portal_url}/oauth/authorize/?{urlencode({'client_id': in_force.client_id})}"
            if portal_url and in_force.client_id
            else None
        )
        return SettingsView(
            sections=[self._section(spec, shown, secrets_set, urls) for spec in _SECTIONS],
            values=values,
            errors=errors,
            store=store,
            derived=DerivedValues(
                webhook_url=urls["webhook_url"],
                redirect_url=urls["redirect_url"],
                authorize_url=authorize_url,
                portal_url=portal_url,
                status=self._status(
                    in_force, "client_secret" in secrets_set, portal_url, connection
                ),
                progress=_import_progress(connection),
                site_script=script,
                site_script_note=None if script else _SCRIPT_NOTE,
            ),
        )

    def _section(
        self,
        spec: _Section,
        shown: dict[str, Any],
        secrets_set: frozenset[str],
        urls: dict[str, str],
    ) -> FormSection:
        fields: list[FormField] = []
        for name, meta in _FIELDS:
            if meta.section != spec.id:
                continue
            if meta.kind == "table":
                fields.extend(self._rows(shown))
            else:
                is_set = name in secrets_set
                fields.append(self._field(name, meta, shown.get(name), shown, is_set=is_set))
        help_text = spec.help and _t(spec.help.ru.format(**urls), spec.help.en.format(**urls))
        return FormSection(
            id=spec.id, title=spec.title, help=help_text, layout=spec.layout, fields=fields
        )

    def _rows(self, shown: dict[str, Any]) -> list[FormField]:
        """One row per known connector, then any custom connector the settings already map."""
        rows = shown.get("messenger_map")
        rows = rows if isinstance(rows, dict) else {}
        custom = [
            c for c in rows if c not in _KNOWN_CONNECTORS and CONNECTOR_ID_PATTERN.fullmatch(c)
        ]
        fields = []
        for connector in [c.id for c in CONNECTORS] + custom:
            row = rows.get(connector)
            row = row if isinstance(row, dict) else {}
            for name, meta in _ROW_FIELDS:
                key = f"messenger_map.{connector}.{name}"
                field = self._field(key, meta, row.get(name), shown, is_set=False)
                fields.append(field.model_copy(update={"row": connector_label(connector)}))
        return fields

    def _field(
        self,
        key: str,
        meta: FormMeta,
        value: Any,
        shown: dict[str, Any],
        *,
        is_set: bool,
    ) -> FormField:
        """One input; ``shown`` (the whole settings JSON) decides whether it is required."""
        kind = meta.kind
        if kind == "table":
            raise TypeError(f"{key}: a table expands into rows, it is not one input")
        if kind == "secret":
            shown_value: str | bool | None = None
        elif kind == "checkbox":
            shown_value = _truthy(value)
        else:
            shown_value = None if value is None else str(value)
        required = (
            meta.required_when_active
            and _truthy(shown.get("active"))
            and _is_shown(meta, shown)
            and not (kind == "secret" and is_set)
        )
        return FormField(
            key=key,
            kind=kind,
            label=meta.label,
            help=meta.help,
            value=shown_value,
            is_set=is_set,
            required=required,
            choices=self._choices(meta),
            show_when=meta.show_when,
            row=None,
        )

    def _choices(self, meta: FormMeta) -> list[Choice]:
        if meta.options:
            return [Choice(value=value, label=label) for value, label in meta.options]
        if meta.catalog is None:
            return []
        empty = [Choice(value="", label=meta.empty_choice)] if meta.empty_choice else []
        items = _catalog_items(self.catalog, meta.catalog)
        return empty + [Choice(value=str(id_), label=_t(name, name)) for id_, name in items]

    def _status(
        self,
        settings: B24Settings,
        has_client_secret: bool,
        portal_url: str | None,
        connection: Connection,
    ) -> Status:
        if not settings.active:
            return Status(level="off", text=_t("Интеграция выключена", "The integration is off"))
        problems = _rule_problems(settings, self.catalog, has_client_secret)
        missing = _labels(p.key for p in problems if p.missing)
        if missing:
            return Status(
                level="warning",
                text=_t(
                    "Заполните: " + ", ".join(m.ru for m in missing),
                    "Fill in: " + ", ".join(m.en for m in missing),
                ),
            )
        wrong = _labels(p.key for p in problems)
        if wrong:
            return Status(
                level="warning",
                text=_t(
                    "Исправьте: " + ", ".join(w.ru for w in wrong),
                    "Fix: " + ", ".join(w.en for w in wrong),
                ),
            )
        if not connection.member_id and connection.problem is not None:
            return error_status(problem_text(connection.problem.code))  # connecting failed
        if not connection.member_id:
            return Status(
                level="warning",
                text=_t(
                    "Портал ещё не подключён: откройте ссылку авторизации (Authorization URL) и "
                    "разрешите доступ приложению.",
                    "The portal is not connected yet: open the authorization URL and allow the "
                    "application access.",
                ),
            )
        settings_host = urlsplit(portal_url).netloc if portal_url else None
        broken = health_status(connection, settings_host, self.health)
        if broken is not None:
            return broken
        domain = connection.domain or urlsplit(portal_url or "").hostname or ""
        granted = connection.scope if connection.scope is not None else list(REQUIRED_SCOPES)
        missing_scopes = [scope for scope in REQUIRED_SCOPES if scope not in granted]
        if missing_scopes:
            names = ", ".join(missing_scopes)
            return Status(
                level="warning",
                text=_t(
                    f"Подключено к {domain}, но у приложения нет прав: {names}. Добавьте их в "
                    "локальном приложении и подключите портал заново.",
                    f"Connected to {domain}, but the application lacks the scopes: {names}. Add "
                    "them in the local application and connect the portal again.",
                ),
            )
        return Status(level="ok", text=_t(f"Подключено к {domain}", f"Connected to {domain}"))


def _import_progress(connection: Connection) -> LocalizedText | None:
    """How far the import of the chats before connecting got, while the portal is connected."""
    history = connection.catchup.history if connection.catchup else None
    if history is None or not connection.connected:
        return None
    days = round((history.until - history.since).total_seconds() / 86400)
    if history.done:
        return _t(
            f"Загружены чаты за {days} дн. до подключения: {history.seen}",
            f"Imported the chats of the {days} days before connecting: {history.seen}",
        )
    of_ru = f" из {history.total}" if history.total is not None else ""
    of_en = f" of {history.total}" if history.total is not None else ""
    return _t(
        f"Идёт загрузка чатов за {days} дн. до подключения: {history.seen}{of_ru}",
        f"Importing the chats of the {days} days before connecting: {history.seen}{of_en}",
    )


def _labels(keys: Iterable[str]) -> list[LocalizedText]:
    """The labels of the top-level fields behind some dotted keys, each once, in page order."""
    tops = {key.split(".")[0] for key in keys}
    return [meta.label for name, meta in _FIELDS if name in tops]


def _truthy(value: Any) -> bool:
    """A checkbox's state from a bool or a form string ("on", "true", "1"); unreadable is off."""
    try:
        return _BOOL.validate_python(value) if value is not None else False
    except ValidationError:
        return False
