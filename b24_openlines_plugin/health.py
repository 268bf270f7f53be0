"""Whether the connection works, said where the client looks, with what to do about it.

The status turns red (``error``) when the plugin knows the portal refuses it (a failed OAuth
callback, a refused token refresh, a catch-up refused: ``Connection.problem``), when the
settings name another portal than the connected one, when the newest delivery that failed in the
last 24 hours failed for want of access and nothing was written since, and when chats keep
arriving through the catch-up but no event has come for ``QUIET`` (the outgoing webhook or the
bound handlers are gone: chats then arrive late, with the catch-up's delay). A portal with no
events *and* no chats is quiet, not broken: nothing tells the two apart, so it stays green.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from b24_openlines_plugin.state import PROBLEM, Connection, Problem, save_connection
from hooks.models import IntegrationHealth, LocalizedText, Status
from hooks.services import HostServices

QUIET = timedelta(days=3)
FAILURES_WINDOW = timedelta(hours=24)
RECONNECT = "reconnect_required"
UNREACHABLE = "portal_unreachable"

# Bitrix24's codes (lower case: Bitrix24 varies the case) that mean "no access", not "busy".
ACCESS_CODES = frozenset(
    {
        "access_denied",
        "invalid_credentials",
        "user_access_error",
        "insufficient_scope",
        "no_auth_found",
        "invalid_token",
        "not_installed",
        "error_oauth",
        "payment_required",
        "portal_deleted",
    }
)
_RECONNECT_CODES = frozenset({"invalid_client", "invalid_grant", RECONNECT, "not_connected"})


def _t(ru: str, en: str) -> LocalizedText:
    return LocalizedText(ru=ru, en=en)


_ACCESS = _t(
    "Битрикс24 отказал в доступе ({code}). REST API доступен только на коммерческих тарифах, "
    "и приложению нужны права сотрудника, подключившего портал: проверьте тариф и права, "
    "затем нажмите «Проверить подключение».",
    "Bitrix24 denied access ({code}). The REST API is available on commercial plans only, and "
    "the application acts with the rights of the employee who connected the portal: check the "
    "plan and the rights, then press “Check the connection”.",
)
_TEXTS: dict[str, LocalizedText] = {
    "invalid_client": _t(
        "Битрикс24 не принял код или ключ приложения (client_id, client_secret): скопируйте их "
        "заново из карточки локального приложения, сохраните настройки и нажмите "
        "«Переподключить». Приложение должно быть установлено на этом портале.",
        "Bitrix24 did not accept the application's client id or client secret: copy them again "
        "from the local application's card, save the settings and press “Reconnect”. The "
        "application must be installed on this portal.",
    ),
    "invalid_grant": _t(
        "Код авторизации не подошёл: он действует 30 секунд и один раз. Нажмите "
        "«Переподключить» ещё раз.",
        "The authorization code was refused: it lasts 30 seconds and works once. Press "
        "“Reconnect” again.",
    ),
    RECONNECT: _t(
        "Битрикс24 отказался продлить доступ приложения: нажмите «Переподключить» и разрешите "
        "доступ заново.",
        "Bitrix24 refused to renew the application's access: press “Reconnect” and allow "
        "access again.",
    ),
    "not_connected": _t(
        "Портал не подключён: нажмите «Подключить Битрикс24».",
        "The portal is not connected: press “Connect Bitrix24”.",
    ),
    "wrong_portal": _t(
        "Доступ разрешили на другом портале, не на том, что указан в настройках: войдите в "
        "Битрикс24 по адресу из настроек и нажмите «Переподключить».",
        "Access was allowed on another portal than the one in the settings: sign in to the "
        "Bitrix24 at the settings' address and press “Reconnect”.",
    ),
    "oauth_server_not_allowed": _t(
        "Портал прислал неизвестный сервер авторизации: проверьте адрес портала в настройках.",
        "The portal named an unknown authorization server: check the portal address.",
    ),
    UNREACHABLE: _t(
        "Битрикс24 не ответил: проверьте адрес портала в настройках и нажмите «Переподключить» "
        "через минуту.",
        "Bitrix24 did not answer: check the portal address in the settings and press "
        "“Reconnect” in a minute.",
    ),
    "payment_required": _t(
        "Истёк оплаченный или пробный период приложения в Битрикс24: продлите его и нажмите "
        "«Переподключить».",
        "The application's paid or trial period in Bitrix24 is over: renew it and press "
        "“Reconnect”.",
    ),
}


def code_of(reason: str) -> str:
    """The code in a failure's reason as the host keeps it (``<error code>: <message>``, the
    code ``bitrix24:<CODE>`` for Bitrix24's refusals), Bitrix24's prefix taken off."""
    return reason.split(": ", 1)[0].strip().removeprefix("bitrix24:")


def problem_text(code: str) -> LocalizedText:
    """What went wrong and what to do, for a problem's code (ours or Bitrix24's)."""
    bare = code.lower().removeprefix("bitrix24:")
    if bare in _TEXTS:
        return _TEXTS[bare]
    if bare in ACCESS_CODES:
        shown = code.removeprefix("bitrix24:")
        return _t(_ACCESS.ru.format(code=shown), _ACCESS.en.format(code=shown))
    return _t(
        f"Подключение не удалось ({code}): проверьте настройки и нажмите «Переподключить».",
        f"Connecting failed ({code}): check the settings and press “Reconnect”.",
    )


def is_refusal(code: str) -> bool:
    """Whether Bitrix24 refuses us for good (a person must act), not just now."""
    bare = code.lower().removeprefix("bitrix24:")
    return bare in ACCESS_CODES or bare in _RECONNECT_CODES


def error_status(text: LocalizedText) -> Status:
    return Status(level="error", text=text)


def health_status(
    connection: Connection,
    settings_host: str | None,
    health: IntegrationHealth | None,
    *,
    now: datetime | None = None,
) -> Status | None:
    """The red (or amber) status of a connected portal, or ``None`` when nothing is wrong."""
    now = now or datetime.now(UTC)
    domain = connection.domain or ""
    if settings_host and domain and settings_host != domain:
        return error_status(
            _t(
                f"В настройках портал {settings_host}, а подключён {domain}: нажмите "
                "«Переподключить», чтобы подключить портал из настроек (или верните адрес).",
                f"The settings name the portal {settings_host}, but {domain} is connected: press "
                "“Reconnect” to connect the settings' portal (or put the address back).",
            )
        )
    if connection.problem is not None:
        return error_status(problem_text(connection.problem.code))
    if health is None:
        return None
    failure = _recent_failure(health, now)
    if failure is not None:
        code = code_of(failure)
        if is_refusal(code):
            return error_status(problem_text(code))
        return Status(
            level="warning",
            text=_t(
                f"За сутки не обработано событий: {health.failures_day}. Откройте «Входящие "
                "вебхуки», чтобы увидеть причину и повторить.",
                f"Events not processed in the last 24 hours: {health.failures_day}. Open the "
                "webhook inbox for the reason and to retry.",
            ),
        )
    connected_at = connection.connected_at
    chats_flow = health.last_appeal_at is not None and now - health.last_appeal_at < QUIET
    events_quiet = health.last_event_at is None or now - health.last_event_at >= QUIET
    if connected_at and now - connected_at >= QUIET and chats_flow and events_quiet:
        return error_status(
            _t(
                "Чаты есть, а события от Битрикс24 не приходят больше 3 дней: обращения приходят "
                "только при сверке, с опозданием. Проверьте исходящий вебхук (Webhook URL) в "
                "Битрикс24 и нажмите «Переподключить».",
                "Chats keep coming but Bitrix24 has sent no event for over 3 days: appeals arrive "
                "late, by the catch-up only. Check the outgoing webhook (Webhook URL) in Bitrix24 "
                "and press “Reconnect”.",
            )
        )
    return None


def _recent_failure(health: IntegrationHealth, now: datetime) -> str | None:
    """The newest failure of the last 24 hours, unless an appeal was written after it."""
    at, reason = health.last_failure_at, health.last_failure
    if at is None or reason is None or now - at > FAILURES_WINDOW:
        return None
    if health.last_appeal_at is not None and health.last_appeal_at > at:
        return None
    return reason


async def record_problem(host: HostServices, integration_id: int, code: str) -> None:
    """Remember why the connection failed, for the status; a failure to save it is logged by
    the caller's own error, which is what matters."""
    problem = Problem(code=code[:100], at=datetime.now(UTC))
    await save_connection(host, integration_id, {PROBLEM: problem.model_dump(mode="json")})
