"""Every ru/en text of the settings page: sections, fields, choices, errors, status, notes.

The one place to translate the settings: the model and the view name these constants and call
these functions, and never write a text of their own. A field's label and help travel together
as a ``FieldText``; a text with values in it is a function.
"""

from __future__ import annotations

from typing import NamedTuple

from hooks.models import LocalizedText


def _t(ru: str, en: str) -> LocalizedText:
    return LocalizedText(ru=ru, en=en)


class FieldText(NamedTuple):
    label: LocalizedText
    help: LocalizedText | None = None


class SectionText(NamedTuple):
    title: LocalizedText
    help: LocalizedText | None = None  # may name {redirect_url} and {webhook_url}


# --- sections ------------------------------------------------------------------------------

CREDENTIALS = SectionText(
    _t("Учетные данные", "Credentials"),
    _t(
        "Создайте в Битрикс24 локальное приложение (Разработчикам → Другое → Локальное "
        "приложение). Укажите в нём URL перенаправления {redirect_url} и права: CRM (crm), "
        "Открытые линии (imopenlines), Чат и уведомления (im), Контакт-центр "
        "(contact_center). Введите ниже выданные приложением «Код приложения (client_id)» и "
        "«Ключ приложения (client_secret)».",
        "Create a local application in Bitrix24 (Developers → Other → Local application). "
        "Set its redirect URL to {redirect_url} and grant the scopes CRM (crm), Open Lines "
        "(imopenlines), Chat and notifications (im), Contact center (contact_center). Enter "
        "the Application ID (client_id) and Application key (client_secret) it issues below.",
    ),
)
ACTIVATION = SectionText(_t("Активация", "Activation"))
WEBHOOK = SectionText(
    _t("Webhook", "Webhook"),
    _t(
        "В Битрикс24 настройте исходящий вебхук на событие «Создание лида» (ONCRMLEADADD) "
        "или «Создание сделки» (ONCRMDEALADD) — смотря что создают ваши открытые линии. "
        "В поле «URL вашего обработчика» укажите Webhook URL: {webhook_url}",
        "In Bitrix24, set up an outgoing webhook on the event 'Lead created' (ONCRMLEADADD) "
        "or 'Deal created' (ONCRMDEALADD), whichever your Open Lines create. Enter the "
        "Webhook URL as its handler URL: {webhook_url}",
    ),
)
EMPLOYEE = SectionText(_t("Сотрудник", "Employee"))
TRAFFIC = SectionText(
    _t("Тип трафика", "Traffic type"),
    _t(
        "Куда относить обращения без сессии, например чаты из мессенджеров.",
        "What appeals without a session, such as chats from messengers, are attributed to.",
    ),
)
MESSENGERS = SectionText(
    _t("Соответствие мессенджеров и источников", "Messengers and sources"),
    _t(
        "Укажите, в какой источник или рекламную кампанию попадают чаты из мессенджеров с "
        "неопределившейся сессией. «По умолчанию» — значение из раздела «Тип трафика»; "
        "пустой сайт — сайт по умолчанию.",
        "Choose the source or ad campaign that chats from each messenger go to when no "
        "session is found. 'Default' takes the value from 'Traffic type'; an empty site "
        "takes the default site.",
    ),
)
SCRIPT = SectionText(
    _t("Скрипт для сайта", "Site script"),
    _t(
        "Установите скрипт на всех страницах сайта с виджетом открытых линий Битрикс24, "
        "после кода отслеживания платформы.",
        "Install the script on every page of the site that carries the Bitrix24 Open Lines "
        "widget, after the platform's tracking code.",
    ),
)

# --- fields --------------------------------------------------------------------------------

# Named as the local application's card in Bitrix24 names them, so the client finds them there.
CLIENT_ID = FieldText(
    _t("Код приложения (client_id)", "Application ID (client_id)"),
    _t(
        "Из карточки локального приложения, например local.64ccbcf7db22b1.98148679",
        "From the local application's card, e.g. local.64ccbcf7db22b1.98148679",
    ),
)
CLIENT_SECRET = FieldText(
    _t("Ключ приложения (client_secret)", "Application key (client_secret)"),
    _t(
        "Из той же карточки. Сохранённый ключ не показывается: оставьте поле пустым, чтобы "
        "его не менять.",
        "From the same card. A saved key is never shown: leave the field empty to keep it.",
    ),
)
PORTAL = FieldText(
    _t("Адрес портала Битрикс24", "Bitrix24 portal address"),
    _t(
        "Например name.bitrix24.ru или свой домен b24.example.ru. Можно вставить ссылку "
        "из адресной строки портала: сохранится только адрес.",
        "E.g. name.bitrix24.ru or a custom domain such as b24.example.ru. You may paste a "
        "link from the portal's address bar: only the address is kept.",
    ),
)
ACTIVE = FieldText(
    _t("Интеграция активна", "Integration active"),
    _t(
        "Пока интеграция выключена, можно сохранить неполные настройки; чаты не передаются.",
        "While the integration is off, incomplete settings can be saved; no chats are "
        "carried over.",
    ),
)
ENTITY = FieldText(
    _t("Сущность, которую создаёт чат", "Entity a chat creates"),
    _t(
        "Что создают ваши открытые линии по новому чату: лид (событие ONCRMLEADADD) "
        "или сделку (ONCRMDEALADD).",
        "What your Open Lines create for a new chat: a lead (event ONCRMLEADADD) or a "
        "deal (ONCRMDEALADD).",
    ),
)
IMPORT_DAYS = FieldText(
    _t("Загрузить прошлые чаты", "Import past chats"),
    _t(
        "При подключении портала загружаются диалоги открытых линий за это число дней "
        "до подключения; ход загрузки виден в статусе выше.",
        "On connecting the portal, the Open Lines dialogs of this many days before are "
        "imported; the status above shows how far it got.",
    ),
)
PLAN = FieldText(
    _t("Тариф Битрикс24", "Bitrix24 plan"),
    _t(
        "Сколько запросов в секунду разрешает портал: 2 (до 50 подряд) на обычных "
        "тарифах, 5 (до 250 подряд) на «Энтерпрайз».",
        "How many requests per second the portal allows: 2 (bursts of 50) on most "
        "plans, 5 (bursts of 250) on Enterprise.",
    ),
)
APPLICATION_TOKEN = FieldText(
    _t("Токен приложения (application_token)", "Application token"),
    _t(
        "Необязательно. Токен со страницы исходящего вебхука в Битрикс24: по нему "
        "проверяется, что событие пришло от вашего портала. Сохранённый токен не "
        "показывается.",
        "Optional. The token shown on Bitrix24's outgoing webhook page: it proves an "
        "event comes from your portal. A saved token is never shown.",
    ),
)
EMPLOYEE_ID = FieldText(
    _t("Сотрудник", "Employee"),
    _t(
        "Сотрудник, который будет указан в переписке чата.",
        "The employee shown as the operator of the chat's appeal.",
    ),
)
TRAFFIC_TYPE = FieldText(_t("Тип трафика", "Traffic type"))
SOURCE_ID = FieldText(_t("Источник", "Source"))
SITE_ID = FieldText(_t("Сайт", "Site"))
CAMPAIGN_ID = FieldText(_t("Рекламная кампания", "Ad campaign"))
SITE_DOMAINS = FieldText(
    _t("Домены сайта", "Site domains"),
    _t(
        "Через запятую: сайты, где стоит скрипт (например shop.example.ru). Только с них "
        "принимаются сообщения скрипта. Пусто — домены сайтов из вашего кабинета.",
        "Comma-separated: the sites that carry the script (e.g. shop.example.ru). Only "
        "they may report to the host. Empty: the domains of your account's sites.",
    ),
)
TRACKER_GETTER = FieldText(
    _t("Функция ID сессии трекера", "Tracker session id function"),
    _t(
        "Откуда скрипт берёт ID сессии посетителя: функция трекера платформы на странице.",
        "Where the script reads the visitor's session id: the platform tracker's "
        "function on the page.",
    ),
)
MESSENGER_MAP = FieldText(MESSENGERS.title)

# --- choices -------------------------------------------------------------------------------

ENTITIES = {"lead": _t("Лид", "Lead"), "deal": _t("Сделка", "Deal")}
PLANS = {"standard": _t("Обычный", "Standard"), "enterprise": _t("Энтерпрайз", "Enterprise")}
TRAFFIC_TYPES = {"source": SOURCE_ID.label, "campaign": CAMPAIGN_ID.label}
NOT_SELECTED = _t("— не выбрано —", "— not selected —")
DEFAULT = _t("По умолчанию", "Default")
NO_IMPORT = _t("Нет, только новые", "No, only new ones")


def import_days(days: int) -> LocalizedText:
    return _t(f"За {days} дн.", f"The last {days} days")


# --- errors --------------------------------------------------------------------------------

REQUIRED = _t(
    "Обязательное поле, пока интеграция активна", "Required while the integration is active"
)
NOT_A_NUMBER = _t("Ожидается целое число", "Expected a whole number")
NOT_IN_CATALOG = {
    "employees": _t("Такого сотрудника нет в аккаунте", "No such employee in the account"),
    "sources": _t("Такого источника нет в аккаунте", "No such source in the account"),
    "sites": _t("Такого сайта нет в аккаунте", "No such site in the account"),
    "campaigns": _t(
        "Такой рекламной кампании нет в аккаунте", "No such ad campaign in the account"
    ),
}
WRONG_TRAFFIC_TYPE = {
    "source": _t(
        "Тип трафика — «Источник»: укажите для мессенджера источник и сайт, а не кампанию",
        "The traffic type is Source: map the messenger to a source and site, not a campaign",
    ),
    "campaign": _t(
        "Тип трафика — «Рекламная кампания»: укажите для мессенджера кампанию, а не источник",
        "The traffic type is Ad campaign: map the messenger to a campaign, not a source",
    ),
}
SITE_WITHOUT_SOURCE = _t(
    "Выберите источник: сайт указывается вместе с источником",
    "Choose a source: a site goes together with a source",
)
_EXPECTED_YES_OR_NO = _t("Ожидается да или нет", "Expected yes or no")
_EXPECTED_AN_OBJECT = _t("Ожидается объект", "Expected an object")
PYDANTIC_ERRORS = {  # by pydantic's error type
    "extra_forbidden": _t("Неизвестный параметр", "Unknown setting"),
    "int_parsing": NOT_A_NUMBER,
    "int_type": NOT_A_NUMBER,
    "int_from_float": NOT_A_NUMBER,
    "bool_parsing": _EXPECTED_YES_OR_NO,
    "bool_type": _EXPECTED_YES_OR_NO,
    "string_type": _t("Ожидается текст", "Expected text"),
    "dict_type": _EXPECTED_AN_OBJECT,
    "model_type": _EXPECTED_AN_OBJECT,
    "model_attributes_type": _EXPECTED_AN_OBJECT,
}
CONNECTOR_ID = _t(
    "Код коннектора: латинские строчные буквы, цифры, «_» и «-», до 64 символов",
    "A connector id is lower-case latin letters, digits, '_' and '-', up to 64",
)
CLIENT_ID_FORMAT = _t(
    "Код приложения — без пробелов, до 100 символов, например local.64ccbcf7db22b1.98148679",
    "An application ID has no spaces and up to 100 characters, e.g. local.64ccbcf7db22b1.98148679",
)
SECRET_FORMAT = _t(
    "Латинские буквы, цифры и знаки, без пробелов, до 200 символов",
    "Latin letters, digits and signs, no spaces, up to 200 characters",
)
ADDRESS_TOO_LONG = _t("Слишком длинный адрес", "The address is too long")
SITE_DOMAINS_FORMAT = _t(
    "Укажите только домены через запятую, например shop.example.ru",
    "List bare domains separated by commas, e.g. shop.example.ru",
)
IMPORT_DAYS_CHOICE = _t("Выберите число дней из списка", "Choose a number of days from the list")
TRACKER_GETTER_FORMAT = _t(
    "Путь к функции вида analyticsHost.getSessionId",
    "A path to a function like analyticsHost.getSessionId",
)


def allowed_values(expected: str) -> LocalizedText:
    return _t(f"Допустимые значения: {expected}", f"Allowed values: {expected}")


def invalid_value(pydantic_message: str) -> LocalizedText:
    return _t("Недопустимое значение", pydantic_message)


# --- notes: what the settings changed in what was typed ------------------------------------


def portal_trimmed(address: str, dropped: str) -> LocalizedText:
    return _t(
        f"Оставлен только адрес портала {address}: «{dropped}» в нём не нужно.",
        f"Kept only the portal's address {address}: '{dropped}' is not needed.",
    )


# --- the status and the import -------------------------------------------------------------

OFF = _t("Интеграция выключена", "The integration is off")
NOT_CONNECTED = _t(
    "Портал ещё не подключён: откройте ссылку авторизации (Authorization URL) и "
    "разрешите доступ приложению.",
    "The portal is not connected yet: open the authorization URL and allow the application access.",
)
SCRIPT_AFTER_SAVING = _t(
    "Скрипт появится здесь после сохранения настроек.",
    "The script appears here once the settings are saved.",
)


def fill_in(labels: list[LocalizedText]) -> LocalizedText:
    return _t(
        "Заполните: " + ", ".join(label.ru for label in labels),
        "Fill in: " + ", ".join(label.en for label in labels),
    )


def fix(labels: list[LocalizedText]) -> LocalizedText:
    return _t(
        "Исправьте: " + ", ".join(label.ru for label in labels),
        "Fix: " + ", ".join(label.en for label in labels),
    )


def connected(domain: str) -> LocalizedText:
    return _t(f"Подключено к {domain}", f"Connected to {domain}")


def missing_scopes(domain: str, names: str) -> LocalizedText:
    return _t(
        f"Подключено к {domain}, но у приложения нет прав: {names}. Добавьте их в "
        "локальном приложении и подключите портал заново.",
        f"Connected to {domain}, but the application lacks the scopes: {names}. Add "
        "them in the local application and connect the portal again.",
    )


def imported(days: int, seen: int) -> LocalizedText:
    return _t(
        f"Загружены чаты за {days} дн. до подключения: {seen}",
        f"Imported the chats of the {days} days before connecting: {seen}",
    )


def importing(days: int, seen: int, total: int | None) -> LocalizedText:
    of_ru = f" из {total}" if total is not None else ""
    of_en = f" of {total}" if total is not None else ""
    return _t(
        f"Идёт загрузка чатов за {days} дн. до подключения: {seen}{of_ru}",
        f"Importing the chats of the {days} days before connecting: {seen}{of_en}",
    )


def untranslated(name: str) -> LocalizedText:
    """A name from the account's catalog, the same in both languages."""
    return _t(name, name)
