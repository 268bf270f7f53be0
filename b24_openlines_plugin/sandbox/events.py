"""Event handlers and their delivery: form-encoded POSTs, in order, tried once, logged.

Two kinds of handlers receive the same events with different ``auth`` blocks: outgoing
webhooks (only the portal's identity and the webhook's token) and the application's
``event.bind`` handlers (plus OAuth tokens, as ONCRMLEADADD.json shows). Bitrix24 never
retries a delivery (API-FACTS §2.6), so neither does the sandbox: a failure is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.errors import RestError, argument_empty
from b24_openlines_plugin.sandbox.oauth import ACCESS_TTL, LocalApp, TokenStore, random_token
from b24_openlines_plugin.sandbox.params import encode_form
from b24_openlines_plugin.sandbox.records import atom

log = logging.getLogger("b24_openlines_plugin.sandbox.events")

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
USER_AGENT = "Bitrix24 Webhook Engine"


@dataclass
class EventBinding:
    """A handler the application bound with ``event.bind``."""

    id: int
    event: str
    handler: str
    auth_type: int
    offline: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "handler": self.handler,
            "auth_type": str(self.auth_type),
            "offline": int(self.offline),
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
class Delivery:
    id: int
    event: str
    entity_id: int
    handler: str
    kind: Literal["outgoing_webhook", "app"]
    event_handler_id: int
    body: str
    queued_at: float
    attempted_at: float | None = None
    status_code: int | None = None
    error: str | None = None
    attempts: int = 0

    def to_json(self, config: SandboxConfig) -> dict[str, Any]:
        tz = config.timezone
        return {
            "id": self.id,
            "event": self.event,
            "entity_id": self.entity_id,
            "handler": self.handler,
            "kind": self.kind,
            "event_handler_id": self.event_handler_id,
            "body": self.body,
            "queued_at": atom(self.queued_at, tz),
            "attempted_at": atom(self.attempted_at, tz) if self.attempted_at else None,
            "attempts": self.attempts,
            "status_code": self.status_code,
            "error": self.error,
            "ok": self.status_code is not None and self.status_code < 400,
        }


@dataclass
class EventHub:
    config: SandboxConfig
    app: LocalApp
    tokens: TokenStore
    bindings: list[EventBinding] = field(default_factory=list)
    webhooks: list[OutgoingWebhook] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _queue: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    _worker: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None
    _last_handler_id: int = 700

    # --- handlers -------------------------------------------------------------------------

    def _next_handler_id(self) -> int:
        self._last_handler_id += 1
        return self._last_handler_id

    def bind(self, event: str, handler: str, auth_type: int, offline: bool) -> EventBinding:
        name = event.strip().upper()
        if not name:
            raise argument_empty("EVENT")
        if not handler:
            raise argument_empty("HANDLER")
        if name not in APP_EVENTS:
            raise RestError("ERROR_EVENT_NOT_FOUND", "Event not found")
        for existing in self.bindings:
            if (existing.event, existing.handler, existing.auth_type, existing.offline) == (
                name,
                handler,
                auth_type,
                offline,
            ):
                raise RestError("ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
        binding = EventBinding(self._next_handler_id(), name, handler, auth_type, offline)
        self.bindings.append(binding)
        return binding

    def unbind(self, event: str, handler: str | None, auth_type: int | None, offline: bool) -> int:
        name = event.strip().upper()
        if not name:
            raise argument_empty("EVENT")
        keep, removed = [], 0
        for binding in self.bindings:
            if (
                binding.event == name
                and (handler is None or binding.handler == handler)
                and (auth_type is None or binding.auth_type == auth_type)
                and binding.offline == offline
            ):
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
        """Queue one delivery per matching handler; offline bindings are not POSTed to."""
        now = self.config.clock()
        for webhook in self.webhooks:
            if event in webhook.events:
                body = self._body(event, entity_id, webhook.id, now, self._webhook_auth(webhook))
                self._queue_delivery(
                    event, entity_id, webhook.handler, "outgoing_webhook", webhook.id, body
                )
        for binding in self.bindings:
            if binding.event == event and not binding.offline:
                auth = self._app_auth(binding.auth_type or 1)
                body = self._body(event, entity_id, binding.id, now, auth)
                self._queue_delivery(event, entity_id, binding.handler, "app", binding.id, body)

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
            "expires_in": str(ACCESS_TTL),
            **identity,
            "refresh_token": grant.refresh_token,
            "application_token": self.app.application_token,
        }

    def _queue_delivery(
        self,
        event: str,
        entity_id: int,
        handler: str,
        kind: Literal["outgoing_webhook", "app"],
        handler_id: int,
        body: str,
    ) -> None:
        delivery = Delivery(
            len(self.deliveries) + 1,
            event,
            entity_id,
            handler,
            kind,
            handler_id,
            body,
            self.config.clock(),
        )
        self.deliveries.append(delivery)
        self._queue.put_nowait(delivery)

    # --- delivering -----------------------------------------------------------------------

    def start(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._worker = asyncio.create_task(self._run(), name="sandbox-event-delivery")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None
        self._http = None

    async def settled(self) -> None:
        """Wait until every queued delivery was attempted (tests call this instead of sleeping)."""
        if self._worker is None and not self._queue.empty():
            raise RuntimeError("event delivery runs in the app's lifespan; start it first")
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(delivery)
            finally:
                self._queue.task_done()

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._http is not None
        delivery.attempts += 1
        delivery.attempted_at = self.config.clock()
        try:
            response = await self._http.post(
                delivery.handler,
                content=delivery.body.encode(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": USER_AGENT,
                },
            )
        except Exception as exc:  # whatever the handler side does, the queue goes on
            delivery.error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "event %s to %s failed: %s (not retried)", delivery.event, delivery.handler, exc
            )
            return
        delivery.status_code = response.status_code
        if response.status_code >= 400:
            log.warning(
                "event %s to %s answered %s (not retried)",
                delivery.event,
                delivery.handler,
                response.status_code,
            )
