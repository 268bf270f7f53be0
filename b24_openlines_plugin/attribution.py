"""Which campaign or source an appeal counts for: the visitor's own session when we know it,
else the messenger's mapping from the settings, else the default of the traffic type."""

from __future__ import annotations

from b24_openlines_plugin.settings import B24Settings
from hooks.models import Attribution, Utm, VisitorSession
from hooks.services import SessionStore

# The connector of the site's live-chat widget, the one place the site script runs.
SITE_CHAT = "livechat"


def _site_for(settings: B24Settings, connector: str) -> int | None:
    """The site the settings give chats of ``connector``: its messenger row's, else the default."""
    row = settings.messenger_map.get(connector)
    return (row.site_id if row else None) or settings.site_id


def from_visit(visit: VisitorSession, settings: B24Settings) -> Attribution:
    """The visitor's own campaign, source, site and UTM tags.

    A visit the host could not place on a site (its domain is not in the catalog, the campaign
    names none) still happened where the site script runs, that is on the client's own site: for
    source traffic it counts for the site the settings give the site's live chat (its messenger
    row, else the default site), as the same chat would without a session, and never for none.
    Campaign traffic has no site in the settings; the host already falls back to the campaign's.
    """
    site_id = visit.site_id
    if site_id is None and settings.traffic_type == "source":
        site_id = _site_for(settings, SITE_CHAT)
    return Attribution(
        method="session",
        session_id=visit.id,
        traffic_type=settings.traffic_type,
        source_id=visit.source_id,
        site_id=site_id,
        campaign_id=visit.campaign_id,
        utm=visit.utm,
    )


async def attribute(
    settings: B24Settings,
    sessions: SessionStore,
    *,
    integration_id: int,
    openlines_session_id: int,
    connector: str,
    crm_utm: Utm,
    transcript_session_id: str | None = None,
) -> Attribution:
    """The bound host session, then one named in the chat, then the messenger map, then default."""
    candidates = []
    binding = await sessions.binding(integration_id, str(openlines_session_id))
    if binding is not None:
        candidates.append(binding.session_id)
    if transcript_session_id:
        candidates.append(transcript_session_id)
    for session_id in candidates:
        visit = await sessions.get(session_id)
        if visit is not None:
            return from_visit(visit, settings)
    row = settings.messenger_map.get(connector)
    if settings.traffic_type == "campaign":
        if row is not None and row.campaign_id is not None:
            return Attribution(
                method="messenger",
                traffic_type="campaign",
                campaign_id=row.campaign_id,
                utm=crm_utm,
            )
        return Attribution(
            method="default", traffic_type="campaign", campaign_id=settings.campaign_id, utm=crm_utm
        )
    if row is not None and row.source_id is not None:
        return Attribution(
            method="messenger",
            traffic_type="source",
            source_id=row.source_id,
            site_id=_site_for(settings, connector),
            utm=crm_utm,
        )
    return Attribution(
        method="default",
        traffic_type="source",
        source_id=settings.source_id,
        site_id=settings.site_id,
        utm=crm_utm,
    )
