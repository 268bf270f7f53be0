"""A messenger emulator: where the demo site's Telegram, WhatsApp and Viber links lead.

Nothing may leave loopback, so on the demo site a sandbox-only listener (``static/messenger.js``,
on the window in the bubbling phase: after the page's own click handling, the site script's
included) takes the link as it finally is and opens ``/sandbox/messenger?link=…`` instead. The
page shows the chat as the messenger would on the visitor's phone: Telegram sends ``/start
<parameter>`` when the visitor presses START, and Bitrix24 shows it as the first visitor message
unless the parameter is its own (``btrx…``) or absent (the connector hides those); WhatsApp and
Viber put the link's text into the message box, where the visitor may change or delete it.
"Send" starts an Open Lines chat on the messenger's connector with those first messages, as
the other sandbox chats start (the lead, the events the analytics host receives).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from b24_openlines_plugin.sandbox import channels
from b24_openlines_plugin.sandbox.inputs import ChatStart, MessageIn, Visitor
from b24_openlines_plugin.sandbox.pages import back, render, sandbox_of
from b24_openlines_plugin.sandbox.scenarios import ScenarioError
from b24_openlines_plugin.sandbox.state import Sandbox

MESSENGER_JS = Path(__file__).parent / "static" / "messenger.js"
Messenger = Literal["telegram", "whatsapp", "viber"]
CONNECTORS: dict[Messenger, str] = {
    "telegram": "telegrambot",
    "whatsapp": "whatsappbyedna",
    "viber": "viber",
}
NAMES: dict[Messenger, str] = {"telegram": "Telegram", "whatsapp": "WhatsApp", "viber": "Viber"}
BITRIX_REF_PREFIX = "btrx"  # imconnector Connectors\Base::REF_PREFIX: its own, never shown


@dataclass(frozen=True)
class MessengerLink:
    """What a messenger makes of a link: whom it opens and what the visitor sends first."""

    messenger: Messenger
    target: str  # the bot's username, the WhatsApp number's digits or the Viber chat URI
    start: str | None = None  # Telegram's start parameter
    text: str = ""  # WhatsApp's and Viber's prefilled text

    @property
    def connector(self) -> str:
        return CONNECTORS[self.messenger]

    @property
    def start_message(self) -> str | None:
        """The message Bitrix24 shows for START: ``/start <parameter>``, unless hidden."""
        if self.messenger != "telegram" or not self.start:
            return None
        if self.start.startswith(BITRIX_REF_PREFIX):
            return None
        return f"/start {self.start}"


def _query(query: str) -> dict[str, str]:
    """The first value of each parameter, by its name in lower case."""
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        found.setdefault(key.lower(), value)
    return found


def parse_link(link: str) -> MessengerLink | None:
    """The messenger link's meaning (the forms the messengers document), else ``None``."""
    parts = urlsplit(link.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower().removeprefix("www.")
    path, query = parts.path.strip("/"), _query(parts.query)
    if scheme in ("http", "https") and host in ("t.me", "telegram.me") and path:
        if "/" not in path:
            return MessengerLink("telegram", path, start=query.get("start"))
    elif scheme == "tg" and host == "resolve" and query.get("domain"):
        return MessengerLink("telegram", query["domain"], start=query.get("start"))
    elif scheme in ("http", "https") and host == "wa.me" and path.lstrip("+").isdigit():
        return MessengerLink("whatsapp", path.lstrip("+"), text=query.get("text", ""))
    elif (
        (scheme in ("http", "https") and host in ("api.whatsapp.com", "web.whatsapp.com"))
        or scheme == "whatsapp"
    ) and (path == "send" or host == "send"):
        digits = "".join(ch for ch in query.get("phone", "") if ch.isdigit())
        if digits:
            return MessengerLink("whatsapp", digits, text=query.get("text", ""))
    elif scheme == "viber" and host == "pa" and query.get("chaturi"):
        return MessengerLink("viber", query["chaturi"], text=query.get("text", ""))
    return None


def _line_id(sandbox: Sandbox, asked: str) -> int:
    """The messenger's open line: ``line=N``, else the first line that creates leads."""
    lines = sandbox.portal.lines
    if asked.isdigit() and int(asked) in lines:
        return int(asked)
    return next((line.id for line in lines.values() if line.crm_create == "lead"), 1)


def _page(
    request: Request,
    raw: str,
    *,
    status: int = 200,
    error: str | None = None,
    message: str | None = None,
    name: str = "",
    phone: str = "",
) -> Response:
    link = parse_link(raw)
    if link is None:
        return render(
            request, "messenger.html", 400 if raw else status, raw=raw, link=None, error=error
        )
    sandbox = sandbox_of(request)
    return render(
        request,
        "messenger.html",
        status,
        raw=raw,
        link=link,
        error=error,
        title=NAMES[link.messenger],
        connector_title=channels.TITLES[link.connector],
        message=link.text if message is None else message,
        name=name or f"{NAMES[link.messenger]} visitor",
        phone=phone or ("+" + link.target if link.messenger == "whatsapp" else ""),
        line_id=_line_id(sandbox, request.query_params.get("line", "")),
    )


async def messenger_page(request: Request) -> Response:
    """``GET /sandbox/messenger?link=…``: the chat the link opens; ``POST``: "Send"."""
    if request.method == "GET":
        return _page(request, request.query_params.get("link", ""))
    form = await request.form()
    raw = str(form.get("link") or "")
    text = str(form.get("message") or "").strip()
    name = str(form.get("name") or "").strip()
    phone = str(form.get("phone") or "").strip()
    link = parse_link(raw)
    if link is None:
        return _page(request, raw, status=400, error="Not a messenger link")
    first = link.start_message
    messages = [MessageIn(text=text)] if text else []
    if first is not None:
        messages.insert(0, MessageIn(text=first))
    if not messages:
        error = f"{NAMES[link.messenger]} sends no empty message: write something"
        return _page(request, raw, status=400, error=error, message="", name=name, phone=phone)
    sandbox = sandbox_of(request)
    try:
        started = sandbox.scenarios.start_chat(
            ChatStart(
                connector=link.connector,
                line_id=_line_id(sandbox, str(form.get("line_id") or "")),
                visitor=Visitor(name=name or None, phone=phone or None),
                messages=messages,
            )
        )
    except (ScenarioError, ValidationError) as exc:
        return _page(request, raw, status=400, error=str(exc), message=text, name=name)
    return back(f"/sandbox/messenger/chats/{started['chat_id']}?link={quote(raw, safe='')}")


async def messenger_chat(request: Request) -> Response:
    """``GET /sandbox/messenger/chats/{id}``: the chat as the visitor's messenger shows it."""
    sandbox = sandbox_of(request)
    chat_id = int(request.path_params["chat_id"])
    chat = sandbox.portal.chats.get(chat_id)
    if chat is None:
        return render(request, "messenger.html", 404, raw="", link=None, error="No such chat")
    portal = sandbox.portal
    shown = [
        (portal.users[m.author_id].name if m.author_id else "system", m.text)
        for m in portal.chat_messages(chat_id)
        if m.author_id
    ]
    return render(
        request,
        "messenger_chat.html",
        chat=sandbox.scenarios.summary(chat),
        connector_title=channels.TITLES[chat.connector],
        messages=shown,
        guest_id=chat.guest_id,
        link=request.query_params.get("link", ""),
    )


async def messenger_js(request: Request) -> Response:
    """The demo site's link catcher (sandbox-only); read on each request, as widget.js."""
    return Response(
        MESSENGER_JS.read_text(encoding="utf-8"),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
