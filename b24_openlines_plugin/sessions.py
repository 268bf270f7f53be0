"""What the site script reports: a visitor's host session meets an Open Lines session.

The endpoint is called from the client's pages, so it answers CORS only for the client's own
sites, checks every field's shape and size, and binds a session only if the host knows it.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from b24_openlines_plugin.appeals import appeal_key
from b24_openlines_plugin.attribution import from_visit
from b24_openlines_plugin.settings import B24Settings, stored_settings
from b24_openlines_plugin.state import connection_of
from hooks.errors import BadRequest, Forbidden, NotFound
from hooks.models import HookRequest, HookResponse, Integration, VisitorSession
from hooks.services import HostServices


class SessionReport(BaseModel):
    """The body the site script posts; more fields may come later, so extra keys are let be."""

    model_config = ConfigDict(extra="ignore")
    session_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    openlines_session_id: int = Field(gt=0, lt=2**31, strict=True)


def _allowed(origin: str, settings: B24Settings, host: HostServices) -> bool:
    parts = urlsplit(origin)
    name = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not name:
        return False
    sites = settings.site_hosts or [site.domain.lower() for site in host.catalog.sites]
    return any(name == site or name == f"www.{site}" for site in sites)


def _cors(origin: str) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "vary": "Origin"}


async def report(
    integration: Integration, request: HookRequest, host: HostServices
) -> HookResponse:
    settings = stored_settings(integration)
    origin = request.headers.get("origin")
    if origin is not None and not _allowed(origin, settings, host):
        raise Forbidden(
            "This site may not report sessions to the integration", code="origin_not_allowed"
        )
    if request.method == "OPTIONS":
        if origin is None:
            raise BadRequest("A preflight needs an Origin")
        headers = _cors(origin) | {
            "access-control-allow-methods": "POST",
            "access-control-allow-headers": "content-type",
            "access-control-max-age": "600",
        }
        return HookResponse(status=204, headers=headers)
    if not settings.active:
        raise Forbidden("The integration is not active", code="inactive")
    try:
        found = SessionReport.model_validate(json.loads(request.body))
    except (ValueError, ValidationError) as exc:
        raise BadRequest(
            "Expected {session_id, openlines_session_id}", code="malformed_report"
        ) from exc
    visit = await host.sessions.get(found.session_id)
    if visit is None:
        raise NotFound("No such visitor session", code="unknown_session")
    binding = await host.sessions.bind(
        integration.id, str(found.openlines_session_id), found.session_id
    )
    if binding.session_id == found.session_id:
        await _attribute_existing(integration, found.openlines_session_id, visit, settings, host)
    return HookResponse(
        status=200,
        headers=_cors(origin) if origin else {},
        json_body={"bound": binding.session_id == found.session_id},
    )


async def _attribute_existing(
    integration: Integration,
    openlines_session_id: int,
    visit: VisitorSession,
    settings: B24Settings,
    host: HostServices,
) -> None:
    """The chat's event may have been processed before the script's report: correct it now."""
    member_id = connection_of(integration).member_id
    if not member_id:
        return
    appeal = await host.appeals.get(appeal_key(member_id, openlines_session_id))
    if appeal is not None and appeal.attribution.method != "session":
        await host.appeals.upsert(
            appeal.model_copy(update={"attribution": from_visit(visit, settings)})
        )
