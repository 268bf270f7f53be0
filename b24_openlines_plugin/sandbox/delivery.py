"""Event deliveries: form-encoded POSTs, in order, tried once, every one logged.

Bitrix24 never retries a delivery (API-FACTS §2.6), so neither does the sandbox: a failure is
logged. Soak faults act here: a dropped delivery is logged as ``dropped`` and never sent, a
duplicated one is logged (and sent) twice, and with a reorder window the deliveries waiting
together go out shuffled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from b24_openlines_plugin.sandbox.chaos import Chaos
from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.records import atom

log = logging.getLogger("b24_openlines_plugin.sandbox.events")

USER_AGENT = "Bitrix24 Webhook Engine"
Kind = Literal["outgoing_webhook", "app"]


@dataclass
class Delivery:
    id: int
    event: str
    entity_id: int
    handler: str
    kind: Kind
    event_handler_id: int
    body: str
    queued_at: float
    attempted_at: float | None = None
    status_code: int | None = None
    error: str | None = None
    attempts: int = 0
    dropped: bool = False
    duplicate_of: int | None = None

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
            "dropped": self.dropped,
            "duplicate_of": self.duplicate_of,
        }


@dataclass
class Deliveries:
    """The queue server: a log of every delivery and one worker that sends them."""

    config: SandboxConfig
    chaos: Chaos
    log: list[Delivery] = field(default_factory=list)
    _queue: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    _worker: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None

    def queue(
        self, event: str, entity_id: int, handler: str, kind: Kind, handler_id: int, body: str
    ) -> None:
        fate = self.chaos.delivery_fate()
        delivery = self._logged(event, entity_id, handler, kind, handler_id, body)
        if fate == "drop":
            delivery.dropped = True
            delivery.error = "dropped (fault injection): never sent"
            return
        self._queue.put_nowait(delivery)
        if fate == "duplicate":
            again = self._logged(event, entity_id, handler, kind, handler_id, body)
            again.duplicate_of = delivery.id
            self._queue.put_nowait(again)

    def _logged(
        self, event: str, entity_id: int, handler: str, kind: Kind, handler_id: int, body: str
    ) -> Delivery:
        delivery = Delivery(
            len(self.log) + 1,
            event,
            entity_id,
            handler,
            kind,
            handler_id,
            body,
            self.config.clock(),
        )
        self.log.append(delivery)
        return delivery

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
            batch = [await self._queue.get()]
            while len(batch) < self.chaos.reorder_window and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for delivery in self.chaos.shuffle(batch):
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
