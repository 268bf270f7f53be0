"""The JSON test API under ``/sandbox/api/``: what a person does on the pages, for tests."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from b24_openlines_plugin.sandbox import bulk, channels
from b24_openlines_plugin.sandbox.chaos import FaultSettings
from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.inputs import (
    BulkChats,
    ChatStart,
    LineIn,
    MessagesIn,
    SessionStart,
)
from b24_openlines_plugin.sandbox.oauth import ALL_SCOPES
from b24_openlines_plugin.sandbox.pages import sandbox_of
from b24_openlines_plugin.sandbox.scenarios import ScenarioError

M = TypeVar("M", bound=BaseModel)


class AppUpdate(BaseModel):
    redirect_uri: str | None = None
    scopes: list[str] | None = None


class WebhookIn(BaseModel):
    handler: str
    events: list[str] | None = None
    event: str | None = None


class FaultIn(BaseModel):
    """A one-shot fault (``error`` given: the next ``times`` calls of ``method`` fail), and/or
    soak knobs (only those given change; see ``chaos.FaultSettings``)."""

    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    error: str | None = None
    times: int = 1
    status: int | None = None
    error_description: str | None = None

    seed: int | None = None
    rest_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    operating_block_seconds: float = Field(default=5.0, ge=0.0)
    rest_timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    rest_timeout_seconds: float = Field(default=65.0, ge=0.0)
    expire_tokens_every: int = Field(default=0, ge=0)
    webhook_drop_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    webhook_duplicate_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    webhook_reorder: int = Field(default=0, ge=0)

    def knobs(self) -> dict[str, Any]:
        names = set(FaultSettings.__dataclass_fields__) & self.model_fields_set
        return {name: getattr(self, name) for name in names}


def problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    return model.model_validate_json(raw or b"{}")


def portal_json(config: SandboxConfig) -> dict[str, Any]:
    return {
        "domain": config.domain,
        "member_id": config.member_id,
        "client_endpoint": config.client_endpoint,
        "server_endpoint": config.server_endpoint,
        "authorize_url": config.public_url + "/oauth/authorize/",
        "token_url": config.public_url + "/oauth/token/",
        "rate_limit": (
            {
                "drain_per_second": config.rate_limit.drain_per_second,
                "burst": config.rate_limit.burst,
            }
            if config.rate_limit
            else None
        ),
    }


async def portal(request: Request) -> Response:
    sandbox = sandbox_of(request)
    return JSONResponse(
        {
            **portal_json(sandbox.config),
            "lines": [vars(line) for line in sandbox.portal.lines.values()],
            "operators": [{"id": u.id, "name": u.name} for u in sandbox.portal.operators],
            "connectors": channels.TITLES,
        }
    )


async def lines(request: Request) -> Response:
    """GET: the open lines. POST: a new one (201 with it), e.g. with a fixed CRM source."""
    portal = sandbox_of(request).portal
    if request.method == "POST":
        try:
            body = await _body(request, LineIn)
        except ValidationError as exc:
            return problem(422, exc.errors(include_url=False))
        line = portal.add_line(body.name, body.crm_create, body.crm_source)
        return JSONResponse(vars(line), status_code=201)
    return JSONResponse([vars(line) for line in portal.lines.values()])


async def app(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "PUT":
        try:
            update = await _body(request, AppUpdate)
        except ValidationError as exc:
            return problem(422, exc.errors(include_url=False))
        if update.scopes is not None:
            unknown = sorted(set(update.scopes) - set(ALL_SCOPES))
            if unknown:
                return problem(422, f"unknown scopes: {unknown}")
            sandbox.app.scopes = list(update.scopes)
        if update.redirect_uri is not None:
            sandbox.app.redirect_uri = update.redirect_uri
    return JSONResponse(sandbox.app.to_json())


async def outgoing_webhooks(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "POST":
        try:
            body = await _body(request, WebhookIn)
            events = [*(body.events or []), *([body.event] if body.event else [])]
            webhook = sandbox.events.add_webhook(body.handler, events)
        except (ValidationError, ValueError) as exc:
            return problem(422, str(exc))
        return JSONResponse(webhook.to_json(), status_code=201)
    return JSONResponse([w.to_json() for w in sandbox.events.webhooks])


async def outgoing_webhook_delete(request: Request) -> Response:
    removed = sandbox_of(request).events.remove_webhook(int(request.path_params["webhook_id"]))
    return Response(status_code=204 if removed else 404)


async def event_handlers(request: Request) -> Response:
    sandbox = sandbox_of(request)
    return JSONResponse([{"id": b.id, **b.to_json()} for b in sandbox.events.bindings])


async def deliveries(request: Request) -> Response:
    sandbox = sandbox_of(request)
    return JSONResponse([d.to_json(sandbox.config) for d in sandbox.events.deliveries])


async def chats(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "GET":
        return JSONResponse([sandbox.scenarios.summary(c) for c in sandbox.portal.chats.values()])
    try:
        started = sandbox.scenarios.start_chat(await _body(request, ChatStart))
    except ValidationError as exc:
        return problem(422, exc.errors(include_url=False))
    except ScenarioError as exc:
        return problem(exc.status, exc.message)
    return JSONResponse(started, status_code=201)


async def chat(request: Request) -> Response:
    sandbox = sandbox_of(request)
    found = sandbox.portal.chats.get(int(request.path_params["chat_id"]))
    if found is None:
        return problem(404, "no such chat")
    return JSONResponse(sandbox.scenarios.summary(found))


async def chat_messages(request: Request) -> Response:
    scenarios = sandbox_of(request).scenarios
    try:
        result = scenarios.add_messages(
            int(request.path_params["chat_id"]), await _body(request, MessagesIn)
        )
    except ValidationError as exc:
        return problem(422, exc.errors(include_url=False))
    except ScenarioError as exc:
        return problem(exc.status, exc.message)
    return JSONResponse(result)


async def chat_close(request: Request) -> Response:
    try:
        result = sandbox_of(request).scenarios.close(int(request.path_params["chat_id"]))
    except ScenarioError as exc:
        return problem(exc.status, exc.message)
    return JSONResponse(result)


async def chat_sessions(request: Request) -> Response:
    scenarios = sandbox_of(request).scenarios
    try:
        result = scenarios.new_session(
            int(request.path_params["chat_id"]), await _body(request, SessionStart)
        )
    except ValidationError as exc:
        return problem(422, exc.errors(include_url=False))
    except ScenarioError as exc:
        return problem(exc.status, exc.message)
    return JSONResponse(result, status_code=201)


def faults_json(request: Request) -> dict[str, Any]:
    sandbox = sandbox_of(request)
    return {
        **sandbox.chaos.to_json(),
        "pending": [f.to_json() for f in sandbox.faults.pending],
    }


async def faults(request: Request) -> Response:
    """GET: counters, knobs and pending one-shot faults. POST: add a one-shot fault (201 with
    it) and/or change knobs (200 with the whole state). DELETE: all off; counters stay."""
    sandbox = sandbox_of(request)
    if request.method == "POST":
        try:
            body = await _body(request, FaultIn)
        except ValidationError as exc:
            return problem(422, exc.errors(include_url=False))
        try:
            sandbox.chaos.update(body.knobs())
        except ValueError as exc:
            return problem(422, str(exc))
        if body.error is None:
            return JSONResponse(faults_json(request))
        fault = sandbox.faults.add(
            body.method, body.error, body.times, body.status, body.error_description
        )
        return JSONResponse(fault.to_json(), status_code=201)
    if request.method == "DELETE":
        sandbox.faults.pending.clear()
        sandbox.chaos.turn_off()
        return Response(status_code=204)
    return JSONResponse(faults_json(request))


async def chats_bulk(request: Request) -> Response:
    sandbox = sandbox_of(request)
    try:
        started = bulk.start_many(sandbox.scenarios, await _body(request, BulkChats))
    except ValidationError as exc:
        return problem(422, exc.errors(include_url=False))
    except ScenarioError as exc:
        return problem(exc.status, exc.message)
    return JSONResponse(started, status_code=201)


async def offline_events(request: Request) -> Response:
    """The whole offline queue, reserved and erroneous records too, with their source keys."""
    sandbox = sandbox_of(request)
    tz = sandbox.config.timezone
    return JSONResponse(
        [
            {**r.to_json(tz, listing=True), "CONNECTOR_ID": r.connector_id}
            for r in sandbox.offline.records
        ]
    )


async def dialogs(request: Request) -> Response:
    """Every dialog (Open Lines session) with its channel and all its messages, read-only: what
    a check running in another process compares the host's appeals with (the cluster soak)."""
    portal = sandbox_of(request).portal
    messages: dict[int, list[dict[str, Any]]] = {}
    for message in portal.messages.values():  # one pass: thousands of dialogs stay cheap
        messages.setdefault(message.session_id, []).append(
            {"id": message.id, "author_id": message.author_id, "text": message.text}
        )
    return JSONResponse(
        [
            {
                "session_id": session.id,
                "chat_id": session.chat_id,
                "line_id": session.line_id,
                "connector": portal.chats[session.chat_id].connector,
                "status": int(session.status),
                "closed": session.closed,
                # What its events name (FIELDS.ID), to trace a dialog through deliveries.
                "lead_id": (session.crm.lead_id or None) if session.crm else None,
                "deal_id": (session.crm.deal_id or None) if session.crm else None,
                "activity_id": session.activity_id,
                "messages": messages.get(session.id, []),
            }
            for session in portal.sessions.values()
        ]
    )
