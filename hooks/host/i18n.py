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
    # health, the connection's actions, renaming and deleting (issue 13)
    "last_event": ("Последнее событие", "Last event"),
    "last_appeal": ("Последнее обращение", "Last appeal"),
    "appeals_today_week": ("Обращений сегодня / за 7 дней", "Appeals today / last 7 days"),
    "appeals_week_label": ("Обращений за 7 дней", "Appeals in the last 7 days"),
    "failures_day": ("Ошибок за 24 ч", "Failures in 24 h"),
    "reconnect": ("Переподключить", "Reconnect"),
    "check_connection": ("Проверить подключение", "Check the connection"),
    "disconnect": ("Отключить", "Disconnect"),
    "integration": ("Интеграция", "Integration"),
    "rename": ("Переименовать", "Rename"),
    "renamed": ("Интеграция переименована.", "The integration is renamed."),
    "delete_integration": ("Удалить интеграцию", "Delete the integration"),
    "delete_warning": (
        "Интеграция будет удалена вместе с её обращениями и входящими вебхуками; это нельзя "
        "отменить. Вебхуки Битрикс24 на её Webhook URL перестанут приниматься.",
        "The integration is deleted with its appeals and webhook inbox; this cannot be undone. "
        "Bitrix24's webhooks to its Webhook URL will be refused.",
    ),
    "delete_confirm": (
        "Да, удалить интеграцию и её обращения",
        "Yes, delete the integration and its appeals",
    ),
    "delete_unconfirmed": (
        "Отметьте подтверждение, чтобы удалить.",
        "Tick the confirmation to delete.",
    ),
    "oauth_used_state": (
        "Эта ссылка авторизации уже использована (например, страницу обновили или открыли "
        "дважды). Нажмите «Переподключить», чтобы подключить портал заново.",
        "This authorization link was used already (the page was reloaded or opened twice). "
        "Press “Reconnect” to connect the portal again.",
    ),
    "oauth_expired_state": (
        "Ссылка авторизации устарела: она действует 10 минут. Нажмите «Переподключить».",
        "The authorization link expired: it lasts 10 minutes. Press “Reconnect”.",
    ),
    "oauth_access_denied": (
        "В Битрикс24 отказали в доступе на странице согласия. Нажмите «Переподключить» и "
        "разрешите доступ (нужен администратор портала или сотрудник с правами на CRM).",
        "Access was denied on Bitrix24's consent page. Press “Reconnect” and allow access (a "
        "portal administrator or an employee with CRM rights is needed).",
    ),
    "oauth_refused": (
        "Битрикс24 не выдал доступ. Проверьте код и ключ приложения и нажмите «Переподключить».",
        "Bitrix24 granted no access. Check the client id and secret and press “Reconnect”.",
    ),
    "oauth_failed": (
        "Подключить портал не удалось: причина и что сделать — в статусе ниже.",
        "Connecting the portal failed: the status below says why and what to do.",
    ),
    "oauth_invalid_state": (
        "Ссылка авторизации недействительна или её интеграция удалена. Откройте «Интеграции», "
        "затем настройки интеграции, и нажмите «Подключить Битрикс24».",
        "The authorization link is not valid, or its integration was deleted. Open "
        "Integrations, then the integration's settings, and press “Connect Bitrix24”.",
    ),
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
    "inbox_status": ("Состояние", "State"),
    "event": ("Событие", "Event"),
    "reason": ("Причина", "Reason"),
    "tab_all": ("Все", "All"),
    "tab_failed": ("С ошибкой", "Failed"),
    "tab_pending": ("В очереди", "Pending"),
    "tab_done": ("Обработаны", "Done"),
    "tab_ignored": ("Пропущены", "Ignored"),
    "state_failed": ("ошибка", "failed"),
    "state_pending": ("в очереди", "pending"),
    "state_done": ("обработан", "done"),
    "state_ignored": ("пропущен", "ignored"),
    "reason_ignored": ("пропущен по решению плагина", "ignored by the plugin"),
    "error_access_denied": (
        "Битрикс24 отказал в доступе: у приложения нет нужных прав или сотрудник, подключивший"
        " портал, их лишился — проверьте права и переподключите Битрикс24",
        "Bitrix24 denied access: the application lacks a permission or the employee who"
        " connected the portal lost it — check the permissions and reconnect Bitrix24",
    ),
    "error_query_limit": (
        "Битрикс24 ограничил частоту запросов; событие будет обработано позже",
        "Bitrix24 limited the request rate; the event will be processed later",
    ),
    "error_token": (
        "Битрикс24 не принял ключ доступа — переподключите Битрикс24 в настройках",
        "Bitrix24 refused the access token — reconnect Bitrix24 in the settings",
    ),
    "error_not_connected": (
        "Портал не подключён — нажмите «Подключить Битрикс24» в настройках",
        "The portal is not connected — press “Connect Bitrix24” in the settings",
    ),
    "error_reconnect": (
        "Нужно заново подключить Битрикс24 в настройках",
        "Bitrix24 has to be connected again in the settings",
    ),
    "error_wrong_portal": (
        "Событие пришло от другого портала Битрикс24",
        "The event came from another Bitrix24 portal",
    ),
    "error_malformed_event": ("Это не событие Битрикс24", "Not a Bitrix24 event"),
    "error_upstream": ("Ошибка на стороне Битрикс24", "An error on Bitrix24's side"),
    "error_internal": ("Внутренняя ошибка плагина", "An internal error of the plugin"),
    "error_bitrix24": ("Битрикс24 вернул ошибку {code}", "Bitrix24 answered with error {code}"),
    "error_other": ("Событие не удалось обработать", "The event could not be processed"),
    "error_gave_up": ("Не удалось за {attempts} попыток.", "Gave up after {attempts} attempts."),
    "none": ("—", "—"),
    "phones": ("Телефоны", "Phones"),
    "emails": ("Эл. почта", "E-mails"),
    "campaign_or_source": ("Кампания / источник", "Campaign / source"),
    "site": ("Сайт", "Site"),
    "crm_link": ("Лид / сделка в Битрикс24", "Lead / deal in Bitrix24"),
    "crm_lead": ("Лид", "Lead"),
    "crm_deal": ("Сделка", "Deal"),
    "crm_contact": ("Контакт", "Contact"),
    "date_from": ("с", "from"),
    "date_to": ("по", "to"),
    "export_csv": ("Скачать CSV", "Download CSV"),
    "found": ("Найдено: {total}", "Found: {total}"),
    "page_of": ("Страница {page} из {pages}", "Page {page} of {pages}"),
    "previous": ("← Назад", "← Previous"),
    "next": ("Дальше →", "Next →"),
    "chart_by_channel": ("Обращения по дням: каналы", "Appeals per day: channels"),
    "chart_by_campaign": (
        "Обращения по дням: кампании и источники",
        "Appeals per day: campaigns and sources",
    ),
}


def t(key: str, language: Language) -> str:
    ru, en = _TEXTS[key]
    return ru if language == "ru" else en


def localized(text: LocalizedText | None, language: Language) -> str:
    return "" if text is None else text.get(language)
