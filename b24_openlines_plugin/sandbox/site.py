"""The client's demo website: shop pages that carry the owner's <head> code and the chat widget.

A newcomer (or a browser test) follows a landing URL with UTM tags to a live chat, so the site
tracker, the integration's site script and the widget meet as on a real site. The stand-in
widget (``static/widget.js``) starts chats through the sandbox's own JSON API. Every page also
has "Написать в Telegram / WhatsApp / Viber" buttons, real links of the forms the messengers
document, to the site's bot, number and chat URI (its settings); the sandbox's messenger
emulator (``messenger``) catches them, so nothing leaves loopback.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from b24_openlines_plugin.sandbox.api import problem
from b24_openlines_plugin.sandbox.pages import LANDING, back, render, sandbox_of
from b24_openlines_plugin.sandbox.state import Sandbox

WIDGET_JS = Path(__file__).parent / "static" / "widget.js"
PAGES = {
    "": "Home",
    "landing": "Spring sale",
    "catalog": "Catalog",
    "product": "Garden chair",
    "contacts": "Contacts",
}


MESSENGER_FIELDS = ("telegram_bot", "whatsapp_number", "viber_uri")
# What the demo site's own links say before any code (its Viber button carries its own text,
# its WhatsApp button none: the site script then writes the settings' text).
VIBER_TEXT = "Здравствуйте! Вопрос по заказу"


class SiteUpdate(BaseModel):
    """What ``PUT /sandbox/api/site`` changes: the keys sent (at least one), the rest is kept."""

    head_html: str | None = None
    telegram_bot: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
    whatsapp_number: str | None = Field(default=None, pattern=r"^[0-9]{6,15}$")
    viber_uri: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @model_validator(mode="after")
    def _something(self) -> SiteUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


def _site_json(sandbox: Sandbox) -> dict[str, str]:
    site = sandbox.site
    return {"head_html": site.head_html} | {name: getattr(site, name) for name in MESSENGER_FIELDS}


def _apply(sandbox: Sandbox, update: SiteUpdate) -> None:
    for name in update.model_fields_set:
        value = getattr(update, name)
        if value is not None:
            setattr(sandbox.site, name, value)


async def site_api(request: Request) -> Response:
    """``GET/PUT /sandbox/api/site``: the head code and the messenger buttons' targets, for
    tests that install a site script."""
    sandbox = sandbox_of(request)
    if request.method == "PUT":
        try:
            update = SiteUpdate.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return problem(422, exc.errors(include_url=False, include_context=False))
        _apply(sandbox, update)
    return JSONResponse(_site_json(sandbox))


async def settings_page(request: Request) -> Response:
    """The site's "CMS" settings; the stored code is shown escaped, as on every sandbox page."""
    sandbox = sandbox_of(request)
    error = None
    if request.method == "POST":
        form = await request.form()
        fields = {name: str(form.get(name) or "").strip() for name in MESSENGER_FIELDS}
        try:
            update = SiteUpdate(
                head_html=str(form.get("head_html") or ""),
                **{name: value for name, value in fields.items() if value},
            )
        except ValidationError as exc:
            error = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        else:
            _apply(sandbox, update)
            return back("/sandbox/site/settings")
    return render(
        request,
        "site_settings.html",
        400 if error else 200,
        error=error,
        site=sandbox.site,
        head_html=sandbox.site.head_html,
        pages=PAGES,
        landing=LANDING,
    )


def _line_id(request: Request, sandbox: Sandbox) -> int:
    """``?line=N`` picks the widget's open line; otherwise the first line that creates leads."""
    lines = sandbox.portal.lines
    asked = request.query_params.get("line", "")
    if asked.isdigit() and int(asked) in lines:
        return int(asked)
    return next((line.id for line in lines.values() if line.crm_create == "lead"), 1)


async def demo_page(request: Request) -> Response:
    """A shop page: the head code, then the widget loader (``?widget=before``: the reverse)."""
    sandbox = sandbox_of(request)
    page = str(request.path_params.get("page", ""))
    return render(
        request,
        "site.html",
        200 if page in PAGES else 404,
        page=page if page in PAGES else None,
        title=PAGES.get(page, "Page not found"),
        pages=PAGES,
        # Raw by design: it is the site owner's own code. site.html alone marks it safe.
        head_html=sandbox.site.head_html,
        widget_first=request.query_params.get("widget") == "before",
        line_id=_line_id(request, sandbox),
        site=sandbox.site,
        viber_text=VIBER_TEXT,
    )


async def widget_js(request: Request) -> Response:
    """Read on each request, so an edited widget needs no restart."""
    return Response(
        WIDGET_JS.read_text(encoding="utf-8"),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
