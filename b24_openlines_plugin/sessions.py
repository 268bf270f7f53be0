"""What the site script reports (a visitor's host session meets an Open Lines session) and asks
for (a code carrying the session into a messenger chat: ``messenger_codes``).

The endpoint is open to anyone, so a report is only a claim. It is answered for the client's
own sites only: a request without one of their ``Origin`` is refused (browsers always send it,
and no page elsewhere can make a visitor's browser send theirs). It must name a visit the host
issued, and it is kept as a binding only as the dialog's first and while the dialog is new.
Outside a browser anyone can send any ``Origin``, so a report never attributes a dialog nor
changes an appeal: the dialog's own custom data decides (``attribution.attribute``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from b24_openlines_plugin.appeals import appeal_key
from b24_openlines_plugin.settings import B24Settings, stored_settings
from b24_openlines_plugin.state import connection_of
from hooks.errors import BadRequest, Forbidden, NotFound
from hooks.models import HookRequest, HookResponse, Integration
from hooks.services import MESSENGER_CHANNELS, HostServices

REPORT_WINDOW = timedelta(minutes=10)
"""How long after its dialog started a report is taken. The widget tells ``sessionStart`` as
the dialog is created and the script reports at once (retrying for seconds), so a real report
comes within seconds; ten minutes leaves room for a phone that slept or a slow network."""
CLOCK_SKEW = timedelta(minutes=2)
"""How far the portal's clock may be ahead of the host's (both keep time by NTP)."""


class VisitRef(BaseModel):
    """A body the site script posts; more fields may come later, so extra keys are let be."""

    model_config = ConfigDict(extra="ignore")
    session_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")


class SessionReport(VisitRef):
    openlines_session_id: int = Field(gt=0, lt=2**31, strict=True)


class CodeRequest(VisitRef):
    """The script asks for the visit's code on page load (no channel) and on each click of a
    messenger link (its channel: one click counted)."""

    channel: str | None = Field(default=None, max_length=64)


def _allowed(origin: str, settings: B24Settings, host: HostServices) -> bool:
    parts = urlsplit(origin)
    name = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not name:
        return False
    sites = settings.site_hosts or [site.domain.lower() for site in host.catalog.sites]
    return any(name == site or name == f"www.{site}" for site in sites)


def _cors(origin: str) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "vary": "Origin"}


Body = TypeVar("Body", bound=VisitRef)


async def from_site(
    integration: Integration,
    request: HookRequest,
    host: HostServices,
    body: type[Body],
    answer: Callable[[Body], Awaitable[tuple[int, Any]]],
) -> HookResponse:
    """A request of the site script, ``answer``-ed (status, JSON body) only from the client's
    sites, while the integration is active and for a ``body`` of the right shape; a preflight
    is answered here."""
    settings = stored_settings(integration)
    origin = request.headers.get("origin")
    if origin is None or not _allowed(origin, settings, host):
        raise Forbidden(
            "Only the client's own sites may call the integration", code="origin_not_allowed"
        )
    if request.method == "OPTIONS":
        headers = _cors(origin) | {
            "access-control-allow-methods": "POST",
            "access-control-allow-headers": "content-type",
            "access-control-max-age": "600",
        }
        return HookResponse(status=204, headers=headers)
    if not settings.active:
        raise Forbidden("The integration is not active", code="inactive")
    try:
        found = body.model_validate(json.loads(request.body))
    except (ValueError, ValidationError) as exc:
        fields = ", ".join(body.model_fields)
        raise BadRequest(f"Expected {{{fields}}}", code="malformed_request") from exc
    status, answered = await answer(found)
    return HookResponse(status=status, headers=_cors(origin), json_body=answered)


async def report(
    integration: Integration, request: HookRequest, host: HostServices
) -> HookResponse:
    async def bind(found: SessionReport) -> tuple[int, Any]:
        if await host.sessions.get(found.session_id) is None:
            raise NotFound("No such visitor session", code="unknown_session")
        bound = False
        if await _recent(integration, found.openlines_session_id, request, host):
            dialog = str(found.openlines_session_id)
            binding = await host.sessions.bind(integration.id, dialog, found.session_id)
            bound = binding.session_id == found.session_id
        # One answer for a dialog taken, old or unknown: a report learns nothing about others.
        return 200, {"bound": bound}

    return await from_site(integration, request, host, SessionReport, bind)


async def mint(integration: Integration, request: HookRequest, host: HostServices) -> HookResponse:
    """The visit's messenger code (``messenger_codes``), on the same terms as a report: the
    same code while no dialog has taken it; a request naming a channel counts a click on it."""

    async def minted(found: CodeRequest) -> tuple[int, Any]:
        if found.channel is not None and found.channel not in MESSENGER_CHANNELS:
            raise BadRequest(
                f"Unknown channel {found.channel!r}: expected one of "
                f"{', '.join(MESSENGER_CHANNELS)}, or none",
                code="unknown_channel",
            )
        code = await host.sessions.mint_code(integration.id, found.session_id, found.channel)
        if code is None:
            raise NotFound("No such visitor session", code="unknown_session")
        return 201, {"code": code}

    return await from_site(integration, request, host, CodeRequest, minted)


async def _recent(
    integration: Integration, openlines_session_id: int, request: HookRequest, host: HostServices
) -> bool:
    """Whether the dialog may still be claimed: the script reports when the dialog starts, so a
    dialog known to have started outside ``REPORT_WINDOW`` of the report is not its visitor's.
    A dialog not seen yet passes; a claim made before it starts still never attributes it."""
    member_id = connection_of(integration).member_id
    appeal = (
        await host.appeals.get(appeal_key(member_id, openlines_session_id)) if member_id else None
    )
    if appeal is None:
        return True
    lag = request.received_at - appeal.created_at
    return -CLOCK_SKEW <= lag <= REPORT_WINDOW
