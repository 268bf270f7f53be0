"""The host's own words in Russian (the default) and English."""

from __future__ import annotations

from hooks.models import Language, LocalizedText

_TEXTS: dict[str, tuple[str, str]] = {
    "app_title": ("Аналитика", "Analytics"),
    "dashboard": ("Интеграции", "Integrations"),
    "raw_appeals": ("Сырые данные → Обращения и цели", "Raw data → Appeals and goals"),
    "inbox": ("Входящие вебхуки", "Webhook inbox"),
    "settings": ("Настройки", "Settings"),
    "no_integrations": ("Интеграций пока нет.", "No integrations yet."),
    "create_integration": ("Подключить интеграцию", "Add integration"),
    "integration_name": ("Название", "Name"),
    "plugin": ("Плагин", "Plugin"),
    "status": ("Статус", "Status"),
    "plugin_failed": ("Плагин не загрузился", "Plugin failed to load"),
    "save": ("Сохранить", "Save"),
    "saved": ("Настройки сохранены.", "Settings saved."),
    "has_errors": (
        "Исправьте ошибки в полях ниже — ничего не сохранено.",
        "Fix the errors below — nothing was saved.",
    ),
    "conflict": (
        "Настройки изменились в другом окне. Обновите страницу.",
        "The settings were changed elsewhere. Reload the page.",
    ),
    "secret_saved": (
        "сохранён — оставьте пустым, чтобы не менять",
        "saved — leave empty to keep it",
    ),
    "settings_left_out": (
        "Не указано, а сейчас задано: PUT заменяет все настройки — передайте это поле или "
        "измените часть настроек через PATCH",
        "Left out but set now: PUT replaces all the settings — send this field, or change "
        "some settings with PATCH",
    ),
    "copy": ("Копировать", "Copy"),
    "webhook_url": ("Webhook URL", "Webhook URL"),
    "redirect_url": (
        "URL для локального приложения (redirect URL)",
        "Redirect URL for the local application",
    ),
    "authorize_url": ("Authorization URL", "Authorization URL"),
    "portal_url": ("Адрес портала", "Portal address"),
    "connect": ("Подключить Битрикс24", "Connect Bitrix24"),
    "site_script": ("Скрипт для сайта", "Site script"),
    "connected": ("Битрикс24 подключён.", "Bitrix24 connected."),
    "all_integrations": ("Все интеграции", "All integrations"),
    "filter": ("Показать", "Show"),
    "time": ("Время", "Time"),
    "channel": ("Канал", "Channel"),
    "contact": ("Контакт", "Contact"),
    "attribution": ("Кампания / источник и сайт", "Campaign / source and site"),
    "employee": ("Сотрудник", "Employee"),
    "text": ("Текст чата", "Chat text"),
    "no_appeals": ("Обращений пока нет.", "No appeals yet."),
    "more": ("Ещё", "More"),
    "method_session": ("сессия", "session"),
    "method_messenger": ("мессенджер", "messenger"),
    "method_default": ("по умолчанию", "default"),
    "error": ("Ошибка", "Error"),
    "back": ("Назад", "Back"),
    "retry": ("Повторить", "Retry"),
    "received": ("Получен", "Received"),
    "attempts": ("Попытки", "Attempts"),
    "last_error": ("Последняя ошибка", "Last error"),
    "no_inbox": ("Входящих нет.", "The inbox is empty."),
}


def t(key: str, language: Language) -> str:
    ru, en = _TEXTS[key]
    return ru if language == "ru" else en


def localized(text: LocalizedText | None, language: Language) -> str:
    return "" if text is None else text.get(language)
