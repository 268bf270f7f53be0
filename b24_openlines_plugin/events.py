"""Deciding about a Bitrix24 event while Bitrix24 waits: is it ours, genuine, and wanted?

Checks, in order: the body parses; it comes from the connected portal (``member_id``); it
carries the application token entered in the settings, or, when none was entered, the one seen
on the first verified event (pinned then). The host has already matched the URL token.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from b24_openlines_plugin.bitrix.event_queue import ACTIVITY_EVENTS, ENTITY_EVENTS
from b24_openlines_plugin.bitrix.records import Event
from b24_openlines_plugin.bitrix.wire import WireError, parse_event
from b24_openlines_plugin.i18n import _
from b24_openlines_plugin.settings import stored_settings
from b24_openlines_plugin.state import PinnedToken, connection_of, secrets_of
from hooks.errors import BadRequest, Conflict, Forbidden
from hooks.models import HookRequest, Integration, LocalizedText, WebhookVerdict
from hooks.services import HostServices

INACTIVE = _("the integration is off: tick “Integration active” in the settings")

APP_DELIVERY = "app"


def parse(request: HookRequest) -> Event:
    try:
        return parse_event(request.body)
    except WireError as exc:
        raise BadRequest(f"Not a Bitrix24 event: {exc}", code="malformed_event") from exc


def _same(received: str, expected: str) -> bool:
    """Constant-time equality of any two texts: the expected token is whatever the settings
    hold, and ``hmac.compare_digest`` raises on non-ASCII ``str``."""
    return hmac.compare_digest(received.encode(), expected.encode())


def handler_url(integration: Integration, host: HostServices) -> str:
    """The integration's Webhook URL (the host's), marked as the application's own delivery."""
    url = urlsplit(host.urls.webhook(integration))
    via = urlencode({"via": APP_DELIVERY})
    return urlunsplit(url._replace(query=f"{url.query}&{via}" if url.query else via))


def is_app_delivery(request: HookRequest) -> bool:
    """Deliveries of handlers the plugin bound itself (``event.bind``) carry ``?via=app``: they
    are signed with the application's token, not the outgoing webhook's."""
    return request.query.get("via") == [APP_DELIVERY]


async def verify(
    integration: Integration, request: HookRequest, host: HostServices
) -> WebhookVerdict:
    event = parse(request)
    member_id = connection_of(integration).member_id
    if member_id and not _same(event.auth.member_id, member_id):
        raise Forbidden("The event comes from another Bitrix24 portal", code="wrong_portal")
    settings = stored_settings(integration)
    pinned = secrets_of(integration)
    pin_as: PinnedToken
    if is_app_delivery(request):
        pin_as, expected = "pinned_app_event_token", pinned.pinned_app_event_token
    else:
        pin_as = "pinned_application_token"
        expected = settings.application_token or pinned.pinned_application_token
    if expected is not None:
        if not _same(event.auth.application_token, expected.get_secret_value()):
            raise Forbidden(
                "The event's application token does not match", code="wrong_application_token"
            )
    elif member_id:
        await _pin(integration, pin_as, event.auth.application_token, host)
    if not settings.active:
        return WebhookVerdict(
            result="ignore", reason="the integration is not active", reason_text=INACTIVE
        )
    if event.name in ACTIVITY_EVENTS:
        # An activity changes many times (answered, closed): each change is its own event.
        return WebhookVerdict(
            result="accept", dedupe_key=f"{event.name}:{event.entity_id}:{event.ts}"
        )
    wanted = ENTITY_EVENTS[settings.entity]
    if event.name != wanted:
        return WebhookVerdict(
            result="ignore",
            reason=f"{event.name} is not handled: the settings say chats create a "
            f"{settings.entity} ({wanted})",
            reason_text=_not_handled(event.name, settings.entity, wanted),
        )
    return WebhookVerdict(result="accept", dedupe_key=f"{event.name}:{event.entity_id}")


def _not_handled(event: str, entity: str, wanted: str) -> LocalizedText:
    if entity == "lead":
        return _(
            "%(event)s is not handled: the settings say chats create a lead (%(wanted)s)",
            event=event,
            wanted=wanted,
        )
    return _(
        "%(event)s is not handled: the settings say chats create a deal (%(wanted)s)",
        event=event,
        wanted=wanted,
    )


async def _pin(integration: Integration, name: PinnedToken, token: str, host: HostServices) -> None:
    try:
        await host.integrations.update(
            integration.id,
            expected_version=integration.version,
            secrets={name: SecretStr(token)},
        )
    except Conflict:
        latest = await host.integrations.get(integration.id)
        pinned = getattr(secrets_of(latest), name) if latest else None
        if pinned is None or not _same(token, pinned.get_secret_value()):
            raise Forbidden(
                "The event's application token does not match", code="wrong_application_token"
            ) from None
