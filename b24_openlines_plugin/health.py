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

from b24_openlines_plugin.i18n import _
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


_TEXTS: dict[str, LocalizedText] = {
    "invalid_client": _(
        "Bitrix24 did not accept the application's client id or client secret: copy them again "
        "from the local application's card, save the settings and press “Reconnect”. The "
        "application must be installed on this portal."
    ),
    "invalid_grant": _(
        "The authorization code was refused: it lasts 30 seconds and works once. Press "
        "“Reconnect” again."
    ),
    RECONNECT: _(
        "Bitrix24 refused to renew the application's access: press “Reconnect” and allow access "
        "again."
    ),
    "not_connected": _("The portal is not connected: press “Connect Bitrix24”."),
    "wrong_portal": _(
        "Access was allowed on another portal than the one in the settings: sign in to the "
        "Bitrix24 at the settings' address and press “Reconnect”."
    ),
    "oauth_server_not_allowed": _(
        "The portal named an unknown authorization server: check the portal address."
    ),
    UNREACHABLE: _(
        "Bitrix24 did not answer: check the portal address in the settings and press “Reconnect” "
        "in a minute."
    ),
    "payment_required": _(
        "The application's paid or trial period in Bitrix24 is over: renew it and press "
        "“Reconnect”."
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
        return _(
            "Bitrix24 denied access (%(code)s). The REST API is available on commercial plans "
            "only, and the application acts with the rights of the employee who connected the "
            "portal: check the plan and the rights, then press “Check the connection”.",
            code=shown,
        )
    return _("Connecting failed (%(code)s): check the settings and press “Reconnect”.", code=code)


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
            _(
                "The settings name the portal %(settings_host)s, but %(domain)s is connected: "
                "press “Reconnect” to connect the settings' portal (or put the address back).",
                settings_host=settings_host,
                domain=domain,
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
            text=_(
                "Events not processed in the last 24 hours: %(count)d. Open the webhook inbox "
                "for the reason and to retry.",
                count=health.failures_day,
            ),
        )
    connected_at = connection.connected_at
    chats_flow = health.last_appeal_at is not None and now - health.last_appeal_at < QUIET
    events_quiet = health.last_event_at is None or now - health.last_event_at >= QUIET
    if connected_at and now - connected_at >= QUIET and chats_flow and events_quiet:
        return error_status(
            _(
                "Chats keep coming but Bitrix24 has sent no event for over 3 days: appeals "
                "arrive late, by the catch-up only. Check the outgoing webhook (Webhook URL) in "
                "Bitrix24 and press “Reconnect”."
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
