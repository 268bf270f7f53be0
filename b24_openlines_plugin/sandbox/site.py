"""The client's demo website: shop pages that carry the owner's <head> code and the chat widget.

A newcomer (or a browser test) follows a landing URL with UTM tags to a live chat, so the site
tracker, the integration's site script and the widget meet as on a real site. The stand-in
widget (``static/widget.js``) starts chats through the sandbox's own JSON API.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError
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


class SiteUpdate(BaseModel):
    head_html: str


def _site_json(sandbox: Sandbox) -> dict[str, str]:
    return {"head_html": sandbox.site.head_html}


async def site_api(request: Request) -> Response:
    """``GET/PUT /sandbox/api/site``: the head code, for tests that install a site script."""
    sandbox = sandbox_of(request)
    if request.method == "PUT":
        try:
            update = SiteUpdate.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return problem(422, exc.errors(include_url=False))
        sandbox.site.head_html = update.head_html
    return JSONResponse(_site_json(sandbox))


async def settings_page(request: Request) -> Response:
    """The site's "CMS" setting; the stored code is shown escaped here, as on every sandbox page."""
    sandbox = sandbox_of(request)
    if request.method == "POST":
        form = await request.form()
        sandbox.site.head_html = str(form.get("head_html") or "")
        return back("/sandbox/site/settings")
    return render(
        request,
        "site_settings.html",
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
    )


async def widget_js(request: Request) -> Response:
    """Read on each request, so an edited widget needs no restart."""
    return Response(
        WIDGET_JS.read_text(encoding="utf-8"),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
