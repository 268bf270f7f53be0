"""The OAuth server's two endpoints: the authorize page (consent → redirect) and the token URL."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from b24_openlines_plugin.sandbox.oauth import OAuthError, token_response
from b24_openlines_plugin.sandbox.pages import render, sandbox_of


def _refuse(request: Request, code: str, message: str) -> Response:
    """Bitrix24 shows authorization errors on its own page and never redirects to the app."""
    return render(request, "oauth_error.html", 400, code=code, message=message)


async def authorize(request: Request) -> Response:
    sandbox = sandbox_of(request)
    app = sandbox.app
    if request.method == "POST":
        form = await request.form()
        client_id, state = str(form.get("client_id") or ""), str(form.get("state") or "")
        raw_user = str(form.get("user_id") or "1")
        user_id = int(raw_user) if raw_user.isdigit() else 0
        denied = form.get("decision") == "deny"
    else:
        client_id = request.query_params.get("client_id", "")
        state = request.query_params.get("state", "")
        user_id = 1
        denied = False
    if client_id != app.client_id:
        return _refuse(
            request, "invalid_client", "Application not found or not installed on this portal"
        )
    if not app.redirect_uri:
        return _refuse(
            request, "invalid_request", "The application has no handler path (redirect URL)"
        )
    if request.method == "GET":
        staff = [u for u in sandbox.portal.users.values() if not u.guest]
        return render(request, "consent.html", app=app, state=state, staff=staff)
    if denied:
        # Bitrix24 documents no error redirect: "if authorization cannot be completed, Bitrix24
        # shows the error on its own page; the application gets neither a redirect nor error
        # parameters" ([RU] settings/oauth/index.md). The person stays on the portal.
        return render(
            request,
            "oauth_error.html",
            403,
            code="access_denied",
            message="Access to the application was denied. No data was shared with it.",
        )
    if user_id not in sandbox.portal.users or sandbox.portal.users[user_id].guest:
        return _refuse(request, "invalid_request", "Unknown user")
    config = sandbox.config
    query = [("code", sandbox.tokens.issue_code(user_id, app.scopes))]
    if state:
        query.append(("state", state))
    query += [
        ("domain", config.domain),
        ("member_id", config.member_id),
        ("scope", ",".join(app.scopes)),
        ("server_domain", config.domain),
    ]
    separator = "&" if "?" in app.redirect_uri else "?"
    return RedirectResponse(app.redirect_uri + separator + urlencode(query), status_code=302)


async def token(request: Request) -> Response:
    """GET as the docs show it; POST (form) accepted too. Errors are HTTP 400."""
    sandbox = sandbox_of(request)
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    try:
        grant = sandbox.tokens.exchange(sandbox.app, params)
    except OAuthError as error:
        return JSONResponse(error.to_json(), status_code=400)
    return JSONResponse(token_response(grant, sandbox.config))
