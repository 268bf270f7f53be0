"""Event handlers: outgoing webhooks, the application's online bindings and offline bindings.

Two kinds of handlers receive the same events with different ``auth`` blocks: outgoing
webhooks (only the portal's identity and the webhook's token) and the application's
``event.bind`` handlers (plus OAuth tokens, their expiry and their user); both are POSTed to by
``delivery``. Offline bindings (``event_type=offline``) get no POST: the event is written to
the offline queue, where the application reads it with ``event.offline.get``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.delivery import Deliveries, Delivery, Kind
from b24_openlines_plugin.sandbox.errors import RestError, argument_empty
from b24_openlines_plugin.sandbox.oauth import ACCESS_TTL, LocalApp, TokenStore, random_token
from b24_openlines_plugin.sandbox.offline import OfflineQueue
from b24_openlines_plugin.sandbox.params import encode_form

CRM_EVENTS = tuple(
    f"ONCRM{entity}{action}"
    for entity in ("LEAD", "DEAL", "CONTACT", "ACTIVITY")
    for action in ("ADD", "UPDATE", "DELETE")
)
APP_EVENTS = (
    *CRM_EVENTS,
    "ONAPPINSTALL",
    "ONAPPUNINSTALL",
    "ONAPPTEST",
    "ONSESSIONSTART",
    "ONSESSIONFINISH",
    "ONOPENLINEMESSAGEADD",
    "ONOPENLINEMESSAGEUPDATE",
    "ONOPENLINEMESSAGEDELETE",
    "ONIMCONNECTORMESSAGEADD",
)
# Whose action the sandbox's events stand for: the portal's administrator, as in the app auth.
EVENT_USER = 1


@dataclass
class EventBinding:
    """A handler the application bound with ``event.bind``; an offline one has no URL."""

    id: int
    event: str
    handler: str
    auth_type: int
    offline: bool
    connector_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """event.get's rows: offline ones show the source key instead (rest Api\\Event)."""
        if self.offline:
            return {"event": self.event, "connector_id": self.connector_id, "offline": 1}
        return {
            "event": self.event,
            "handler": self.handler,
            "auth_type": str(self.auth_type),
            "offline": 0,
        }


@dataclass
class OutgoingWebhook:
    """Applications → Developer resources → Other → Outgoing webhook: a URL, events, a token."""

    id: int
    handler: str
    events: list[str]
    application_token: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "handler": self.handler,
            "events": list(self.events),
            "application_token": self.application_token,
        }


@dataclass
class EventHub:
    config: SandboxConfig
    app: LocalApp
    tokens: TokenStore
    sender: Deliveries
    offline: OfflineQueue
    bindings: list[EventBinding] = field(default_factory=list)
    webhooks: list[OutgoingWebhook] = field(default_factory=list)
    _last_handler_id: int = 700

    @property
    def deliveries(self) -> list[Delivery]:
        return self.sender.log

    # --- handlers -------------------------------------------------------------------------

    def _next_handler_id(self) -> int:
        self._last_handler_id += 1
        return self._last_handler_id

    def bind(
        self, event: str, handler: str, auth_type: int, offline: bool, connector_id: str = ""
    ) -> EventBinding:
        """An offline binding keeps no handler nor user, only the source key (auth_connector)."""
        name = event.strip().upper()
        if not name:
            raise argument_empty("EVENT")
        if offline:
            handler, auth_type = "", 0
        elif not handler:
            raise argument_empty("HANDLER")
        if name not in APP_EVENTS:
            raise RestError("ERROR_EVENT_NOT_FOUND", "Event not found")
        key = (name, handler, auth_type, offline, connector_id if offline else "")
        for existing in self.bindings:
            if key == (
                existing.event,
                existing.handler,
                existing.auth_type,
                existing.offline,
                existing.connector_id,
            ):
                raise RestError("ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
        binding = EventBinding(
            self._next_handler_id(),
            name,
            handler,
            auth_type,
            offline,
            connector_id if offline else "",
        )
        self.bindings.append(binding)
        return binding

    def unbind(
        self,
        event: str,
        handler: str | None,
        auth_type: int | None,
        offline: bool,
        connector_id: str = "",
    ) -> int:
        """Offline bindings are found by their source key; handler and auth_type are moot."""
        name = event.strip().upper()
        if not name:
            raise argument_empty("EVENT")
        keep, removed = [], 0
        for binding in self.bindings:
            if binding.event != name or binding.offline != offline:
                hit = False
            elif offline:
                hit = binding.connector_id == connector_id
            else:
                hit = (handler is None or binding.handler == handler) and (
                    auth_type is None or binding.auth_type == auth_type
                )
            if hit:
                removed += 1
            else:
                keep.append(binding)
        self.bindings = keep
        return removed

    def add_webhook(self, handler: str, events: list[str]) -> OutgoingWebhook:
        names = [e.strip().upper() for e in events if e.strip()]
        unknown = [e for e in names if e not in CRM_EVENTS]
        if not handler or not names or unknown:
            raise ValueError(f"a handler URL and known CRM events are needed (unknown: {unknown})")
        webhook = OutgoingWebhook(self._next_handler_id(), handler, names, random_token())
        self.webhooks.append(webhook)
        return webhook

    def remove_webhook(self, webhook_id: int) -> bool:
        before = len(self.webhooks)
        self.webhooks = [w for w in self.webhooks if w.id != webhook_id]
        return len(self.webhooks) < before

    # --- emitting -------------------------------------------------------------------------

    def emit(self, event: str, entity_id: int) -> None:
        """Queue one delivery per online handler and one offline record per source key."""
        now = self.config.clock()
        for webhook in self.webhooks:
            if event in webhook.events:
                body = self._body(event, entity_id, webhook.id, now, self._webhook_auth(webhook))
                self._send(event, entity_id, webhook.handler, "outgoing_webhook", webhook.id, body)
        connectors: list[str] = []
        for binding in self.bindings:
            if binding.event != event:
                continue
            if binding.offline:
                if binding.connector_id not in connectors:
                    connectors.append(binding.connector_id)
                continue
            auth = self._app_auth(binding.auth_type or EVENT_USER)
            body = self._body(event, entity_id, binding.id, now, auth)
            self._send(event, entity_id, binding.handler, "app", binding.id, body)
        for connector_id in connectors:
            self.offline.record(
                event,
                {"FIELDS": {"ID": str(entity_id)}},
                {"user_id": str(EVENT_USER)},
                connector_id,
            )

    def _send(
        self, event: str, entity_id: int, handler: str, kind: Kind, handler_id: int, body: str
    ) -> None:
        self.sender.queue(event, entity_id, handler, kind, handler_id, body)

    def _body(
        self, event: str, entity_id: int, handler_id: int, now: float, auth: dict[str, str]
    ) -> str:
        return encode_form(
            {
                "event": event,
                "event_handler_id": str(handler_id),
                "data": {"FIELDS": {"ID": str(entity_id)}},
                "ts": str(int(now)),
                "auth": auth,
            }
        )

    def _webhook_auth(self, webhook: OutgoingWebhook) -> dict[str, str]:
        return {
            "domain": self.config.domain,
            "client_endpoint": self.config.client_endpoint,
            "server_endpoint": self.config.server_endpoint,
            "member_id": self.config.member_id,
            "application_token": webhook.application_token,
        }

    def _app_auth(self, user_id: int) -> dict[str, str]:
        """The token block of a user's action, in the order real deliveries carry its keys.

        The docs' event examples leave out ``expires`` and ``user_id``, but deliveries carry
        them (captured ONAPPINSTALL bodies; the docs' own bot-event ``auth`` examples), and
        clients such as the official Python SDK require ``expires``. ``user_id`` is the user
        the tokens belong to: ``app.info`` called with them answers that same user.
        """
        identity = {
            "scope": ",".join(self.app.scopes),
            "domain": self.config.domain,
            "server_endpoint": self.config.server_endpoint,
            "status": "L",
            "client_endpoint": self.config.client_endpoint,
            "member_id": self.config.member_id,
        }
        if not self.config.event_auth_tokens:
            return {**identity, "application_token": self.app.application_token}
        grant = self.tokens.issue(user_id, tuple(self.app.scopes))
        return {
            "access_token": grant.access_token,
            "expires": str(grant.expires),
            "expires_in": str(ACCESS_TTL),
            **identity,
            "user_id": str(grant.user_id),
            "refresh_token": grant.refresh_token,
            "application_token": self.app.application_token,
        }
