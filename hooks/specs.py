"""The hooks the host calls. This module is the contract: each docstring says when a hook is
called, what its arguments are, what it returns and what ``None`` means.

Rules shared by every hook:

* The host calls hooks with keyword arguments; an implementation accepts only those it needs.
* Every hook is ``firstresult``: the first implementation that returns something other than
  ``None`` answers. The host calls the hook of the plugin that owns the integration, and an
  implementation still returns ``None`` for an integration whose ``plugin`` is not its own.
* Implementations may be async inside: return a coroutine and the host awaits it. Decide
  ownership *before* creating the coroutine, because a coroutine is never ``None``.
* Errors are raised as ``hooks.errors.HookError`` subclasses; ``RetryLater`` marks a transient
  failure that the host retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

from hooks import hookspec
from hooks.models import (
    Catalog,
    ConnectionCheck,
    HookRequest,
    HookResponse,
    Integration,
    IntegrationHealth,
    OAuthOutcome,
    ScheduleOutcome,
    SettingsView,
    WebhookOutcome,
    WebhookVerdict,
)
from hooks.services import HostServices


@hookspec(firstresult=True)
def on_settings_render(
    integration: Integration,
    catalog: Catalog,
    submitted: Mapping[str, Any] | None,
    host: HostServices,
    health: IntegrationHealth | None,
) -> SettingsView | Awaitable[SettingsView] | None:
    """Describe the integration's settings page, and validate a submission.

    Called to show the settings page (``GET /integrations/{id}/settings``), to answer the
    integration JSON (``GET /api/integrations/{id}``) and to save settings (``POST`` of the
    page, ``PUT /api/integrations/{id}/settings``).

    :param integration: the stored integration, secrets included as ``SecretStr``.
    :param catalog: the account's employees, sources, sites and campaigns to choose from.
    :param submitted: ``None`` to show the stored settings; otherwise the submitted settings as
        nested JSON (a form is converted by the host: ``a[b][c]`` names become nested keys,
        values stay strings, an unticked checkbox is absent).
    :param host: the host's services.
    :param health: what the host saw of the integration's deliveries and appeals (last event,
        failures of the last 24 hours and the newest one's reason, …), for the status to turn
        red with a reason the plugin can read; ``None`` when the host has none to give.
    :return: a ``SettingsView``: the sections and fields to render (secrets never echoed back),
        the current values as JSON with secrets masked, field errors, the derived read-only
        values, and, when ``submitted`` is valid, ``store`` with what the host must save. A
        submission with errors has ``store=None`` and the host saves nothing. ``None``: the
        integration is not this plugin's.
    """


@hookspec(firstresult=True)
def on_oauth_callback(
    integration: Integration,
    query: Mapping[str, str],
    host: HostServices,
) -> OAuthOutcome | Awaitable[OAuthOutcome] | None:
    """Finish an OAuth authorization: the browser came back to ``GET /oauth2/callback``.

    Called after the host has verified the signed ``state`` and found the integration in it.

    :param integration: the integration the authorization was started for.
    :param query: the callback's query parameters (``code``, ``domain``, ``member_id``, ...).
    :param host: the host's services; ``host.http`` is the client for outbound calls.
    :return: an ``OAuthOutcome`` with the secrets (tokens) and connection facts that the host
        merges into the integration, and a message for the person. Raise a ``HookError`` to
        refuse. ``None``: the integration is not this plugin's.
    """


@hookspec(firstresult=True)
def on_webhook_verify(
    integration: Integration,
    request: HookRequest,
    host: HostServices,
) -> WebhookVerdict | Awaitable[WebhookVerdict] | None:
    """Check a webhook delivery while the sender waits, before the host stores it.

    Called for ``POST /webhooks/{id}/{token}`` once the host has matched the URL token and read
    the body (its size capped). Must be quick and make no network calls: the sender waits, and
    Bitrix24 slows down handlers that answer slowly.

    :param integration: the integration named in the Webhook URL.
    :param request: the request as received, body raw.
    :param host: the host's services.
    :return: a ``WebhookVerdict``: ``accept`` (the host stores the delivery and later calls
        ``on_webhook``), or ``ignore`` with the reason (the host records it as ignored and
        answers 200). ``dedupe_key`` names the event so that a redelivery is stored once. Raise
        ``BadRequest`` for a malformed body and ``Forbidden`` for a forged one: the host answers
        with that status and stores nothing. ``None``: the integration is not this plugin's.
    """


@hookspec(firstresult=True)
def on_webhook(
    integration: Integration,
    request: HookRequest,
    host: HostServices,
) -> WebhookOutcome | Awaitable[WebhookOutcome] | None:
    """Process one webhook delivery that the host has persisted in its inbox.

    Called by the host's worker, not while the sender waits: the host has already checked the
    URL token, saved the request and answered 200. Must be idempotent: the same request may be
    processed more than once (after a crash, a retry or a replay by the sender).

    :param integration: the integration named in the Webhook URL.
    :param request: the request as received, body raw.
    :param host: the host's services; write appeals with ``host.appeals.upsert``.
    :return: a ``WebhookOutcome`` saying whether the event was processed or ignored, and why.
        Raise ``RetryLater`` for a transient failure (the host retries with backoff) and any
        other ``HookError`` for a permanent one (the host parks the item as failed, with the
        message, for a person to look at). ``None``: the integration is not this plugin's.
    """


@hookspec(firstresult=True)
def on_session(
    integration: Integration,
    request: HookRequest,
    host: HostServices,
) -> HookResponse | Awaitable[HookResponse] | None:
    """Record what the plugin's site script reports: a visitor session meets a conversation.

    Called for ``POST /api/sessions/{id}`` and its CORS preflight (``OPTIONS``), while the
    browser waits.

    :param integration: the integration in the URL.
    :param request: the request; ``request.method`` tells a preflight from a report.
    :param host: the host's services; bind with ``host.sessions.bind``.
    :return: the ``HookResponse`` to send, CORS headers included. ``None``: the integration is
        not this plugin's.
    """


@hookspec(firstresult=True)
def on_messenger_code(
    integration: Integration,
    request: HookRequest,
    host: HostServices,
) -> HookResponse | Awaitable[HookResponse] | None:
    """Give the plugin's site script a short code that carries a visitor's session into a
    messenger chat (a Telegram start link, a prefilled WhatsApp text).

    Called for ``POST /api/messenger-codes/{id}`` and its CORS preflight (``OPTIONS``), while
    the browser waits; the host has counted the request against the session reports' limit.

    :param integration: the integration in the URL.
    :param request: the request; ``request.method`` tells a preflight from a request for a code.
    :param host: the host's services; mint with ``host.sessions.mint_code``.
    :return: the ``HookResponse`` to send, CORS headers included. ``None``: the integration is
        not this plugin's.
    """


@hookspec(firstresult=True)
def on_schedule(
    integration: Integration,
    host: HostServices,
) -> ScheduleOutcome | Awaitable[ScheduleOutcome] | None:
    """Catch up on what push delivery missed, and finish what is still open.

    Called periodically for every integration by the host's scheduler (every
    ``--schedule-seconds``, 60 s by default), in the same job as the integration's inbox drain,
    so the two never run at once for one integration.

    :param integration: the integration, as stored now.
    :param host: the host's services; write appeals with ``host.appeals.upsert`` and keep a
        cursor with ``host.integrations.update``.
    :return: a ``ScheduleOutcome`` naming the appeals written. Raise ``RetryLater`` when the
        remote side is busy (the next run tries again). ``None``: the integration is not this
        plugin's.
    """


@hookspec(firstresult=True)
def on_connection_action(
    integration: Integration,
    action: str,
    host: HostServices,
) -> ConnectionCheck | Awaitable[ConnectionCheck] | None:
    """A person's action on the integration's connection to the remote service.

    Called for ``POST /integrations/{id}/check`` (``action="check"``: a live call with the
    stored tokens, telling whether they work and the access granted covers what the plugin
    needs) and ``POST /integrations/{id}/disconnect`` (``action="disconnect"``: forget the
    tokens and the remote identity, keeping the settings; the plugin writes that itself through
    ``host.integrations.update``).

    :param integration: the integration, as stored now.
    :param action: ``"check"`` or ``"disconnect"``; raise ``BadRequest`` for another.
    :param host: the host's services; ``host.http`` is the client for outbound calls.
    :return: a ``ConnectionCheck`` whose status the host shows as the action's result, in the
        person's language. ``None``: the integration is not this plugin's.
    """
