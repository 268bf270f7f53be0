"""The portal's pages for people: start chats, the local application, outgoing webhooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from b24_openlines_plugin.sandbox import channels
from b24_openlines_plugin.sandbox.events import CRM_EVENTS
from b24_openlines_plugin.sandbox.inputs import (
    ChatStart,
    MessageIn,
    MessagesIn,
    SessionStart,
    Visitor,
)
from b24_openlines_plugin.sandbox.oauth import ALL_SCOPES
from b24_openlines_plugin.sandbox.records import atom
from b24_openlines_plugin.sandbox.scenarios import ScenarioError
from b24_openlines_plugin.sandbox.state import Sandbox

LANDING = "/site/landing?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"
"""The demo site's page as reached from an ad (``site.py`` serves it)."""

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    config = sandbox_of(request).config
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"domain": config.domain, "member_id": config.member_id, **context},
        status_code=status,
    )


def back(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


async def home(request: Request) -> Response:
    return back("/sandbox/")


def _transcript(sandbox: Sandbox, chat_id: int) -> list[str]:
    portal = sandbox.portal
    lines = []
    for message in portal.chat_messages(chat_id):
        who = portal.users[message.author_id].name if message.author_id else "system"
        lines.append(f"#{message.id} s{message.session_id} {who}: {message.text}")
    return lines


async def index(request: Request, error: str | None = None, status: int = 200) -> Response:
    sandbox = sandbox_of(request)
    portal, tz = sandbox.portal, sandbox.config.timezone
    chats = [sandbox.scenarios.summary(c) for c in reversed(portal.chats.values())]
    crm = [
        {
            "kind": "lead",
            "id": x.id,
            "title": x.title,
            "source": x.source_id,
            "created": atom(x.created_at, tz),
        }
        for x in portal.leads.values()
    ] + [
        {
            "kind": "deal",
            "id": x.id,
            "title": x.title,
            "source": x.source_id,
            "created": atom(x.created_at, tz),
        }
        for x in portal.deals.values()
    ]
    return render(
        request,
        "index.html",
        status,
        error=error,
        connectors=list(channels.TITLES.items()),
        lines=list(portal.lines.values()),
        operators=portal.operators,
        chats=chats,
        transcripts={c["chat_id"]: _transcript(sandbox, c["chat_id"]) for c in chats},
        crm=crm,
        landing=LANDING,
    )


def _messages(text: str) -> list[MessageIn]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.lower().startswith("op:"):
            out.append(MessageIn(author="operator", text=line[3:].strip()))
        elif line:
            out.append(MessageIn(author="visitor", text=line))
    return out


def _optional_int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


async def start_chat(request: Request) -> Response:
    form = await request.form()
    sandbox = sandbox_of(request)
    try:
        started = sandbox.scenarios.start_chat(
            ChatStart(
                connector=str(form.get("connector") or "livechat"),
                line_id=_optional_int(form.get("line_id")) or 1,
                operator_id=_optional_int(form.get("operator_id")),
                visitor=Visitor(
                    name=str(form.get("name") or "") or None,
                    phone=str(form.get("phone") or "") or None,
                    email=str(form.get("email") or "") or None,
                ),
                messages=_messages(str(form.get("messages") or "")),
                custom_data=str(form.get("custom_data") or "") or None,
                returning_contact_id=_optional_int(form.get("returning_contact_id")),
                new_lead=bool(form.get("new_lead")),
                close=bool(form.get("close")),
            )
        )
    except (ScenarioError, ValidationError) as exc:
        return await index(request, error=str(exc), status=400)
    return back(f"/sandbox/#chat-{started['chat_id']}")


async def chat_message(request: Request) -> Response:
    form = await request.form()
    chat_id = int(request.path_params["chat_id"])
    author: Literal["visitor", "operator"] = (
        "operator" if form.get("author") == "operator" else "visitor"
    )
    try:
        sandbox_of(request).scenarios.add_messages(
            chat_id,
            MessagesIn(messages=[MessageIn(author=author, text=str(form.get("text") or ""))]),
        )
    except (ScenarioError, ValidationError) as exc:
        return await index(request, error=str(exc), status=400)
    return back(f"/sandbox/#chat-{chat_id}")


async def chat_close(request: Request) -> Response:
    chat_id = int(request.path_params["chat_id"])
    try:
        sandbox_of(request).scenarios.close(chat_id)
    except ScenarioError as exc:
        return await index(request, error=str(exc), status=400)
    return back(f"/sandbox/#chat-{chat_id}")


async def chat_session(request: Request) -> Response:
    form = await request.form()
    chat_id = int(request.path_params["chat_id"])
    try:
        sandbox_of(request).scenarios.new_session(
            chat_id,
            SessionStart(
                messages=_messages(str(form.get("text") or "")), new_lead=bool(form.get("new_lead"))
            ),
        )
    except (ScenarioError, ValidationError) as exc:
        return await index(request, error=str(exc), status=400)
    return back(f"/sandbox/#chat-{chat_id}")


async def app_page(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "POST":
        form = await request.form()
        scopes = [str(s) for s in form.getlist("scopes") if str(s) in ALL_SCOPES]
        sandbox.app.redirect_uri = str(form.get("redirect_uri") or "").strip()
        sandbox.app.scopes = scopes
        return back("/sandbox/app")
    return render(
        request,
        "app.html",
        app=sandbox.app,
        all_scopes=ALL_SCOPES,
        client_endpoint=sandbox.config.client_endpoint,
        public_url=sandbox.config.public_url,
        bindings=sandbox.events.bindings,
    )


async def webhooks_page(request: Request) -> Response:
    sandbox = sandbox_of(request)
    error = None
    if request.method == "POST":
        form = await request.form()
        try:
            sandbox.events.add_webhook(
                str(form.get("handler") or "").strip(), [str(e) for e in form.getlist("events")]
            )
            return back("/sandbox/webhooks")
        except ValueError as exc:
            error = str(exc)
    return render(
        request,
        "webhooks.html",
        400 if error else 200,
        error=error,
        crm_events=CRM_EVENTS,
        webhooks=sandbox.events.webhooks,
    )


async def webhook_delete(request: Request) -> Response:
    sandbox_of(request).events.remove_webhook(int(request.path_params["webhook_id"]))
    return back("/sandbox/webhooks")


async def deliveries_page(request: Request) -> Response:
    sandbox = sandbox_of(request)
    rows = [d.to_json(sandbox.config) for d in reversed(sandbox.events.deliveries)]
    return render(request, "deliveries.html", deliveries=rows)
