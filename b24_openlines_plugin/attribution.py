"""Which campaign or source an appeal counts for: the visit the dialog's own custom data names,
else the visit of a messenger code its first visitor messages carry, else the messenger's
mapping from the settings, else the default of the traffic type."""

from __future__ import annotations

from dataclasses import dataclass

from b24_openlines_plugin.marker import SITE_CHAT
from b24_openlines_plugin.settings import B24Settings
from hooks.models import Attribution, Utm, VisitorSession
from hooks.services import MessengerChannel, SessionStore


@dataclass(frozen=True)
class MessengerCode:
    """A code found in a dialog (``messenger_codes.code_in``), to redeem for that dialog."""

    integration_id: int
    dialog: str
    code: str
    channel: MessengerChannel | None = None  # the host counts the chats with a code per channel


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
    connector: str,
    crm_utm: Utm,
    custom_data_visit: str | None = None,
    messenger_code: MessengerCode | None = None,
) -> Attribution:
    """The visit the dialog's custom data names (``marker.visit_of_dialog``) if the host issued
    it, then the visit of the messenger code if the host gives it to this dialog (the first to
    redeem it), then the messenger map, then the default.

    A site script's report (a binding) never decides: anyone can send one for any dialog. It
    is a claim only the dialog's custom data could confirm, and once that names a visit, the
    claim adds nothing. A code is redeemed only when the custom data names no visit, so a
    dialog that has its own proof never takes a code away from another.
    """
    visit = await sessions.get(custom_data_visit) if custom_data_visit else None
    if visit is None and messenger_code is not None:
        visit = await sessions.redeem_code(
            messenger_code.integration_id,
            messenger_code.code,
            messenger_code.dialog,
            messenger_code.channel,
        )
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
