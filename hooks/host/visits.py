"""The host's own visitor tracking: a landing page view becomes a visitor session.

This is the reference host's small stand-in for the platform's tracker: UTM tags pick the
campaign and the source, the page's domain picks the site (``hooks.host.sites``), else the
campaign's site. The session's id is signed (``hooks.host.visit_ids``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from hooks.host import visit_ids
from hooks.host.sites import site_of
from hooks.models import Catalog, Utm, VisitorSession

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
MAX_TAG_LENGTH = 200


def utm_from_url(url: str) -> Utm:
    query = parse_qs(urlsplit(url).query)
    tags = {key: query[key][0][:MAX_TAG_LENGTH] for key in UTM_KEYS if query.get(key, [""])[0]}
    return Utm(**tags)


def new_visitor_session(
    url: str, referrer: str | None, catalog: Catalog, *, key: bytes
) -> VisitorSession:
    """The visit a page view starts, its id signed with the host's ``key``."""
    utm = utm_from_url(url)
    site = site_of(url, catalog.sites)
    campaign = next(
        (c for c in catalog.campaigns if utm.utm_campaign and c.utm_campaign == utm.utm_campaign),
        None,
    )
    source = next(
        (s for s in catalog.sources if utm.utm_source and s.utm_source == utm.utm_source.lower()),
        None,
    )
    return VisitorSession(
        id=visit_ids.issue(key),
        created_at=datetime.now(UTC),
        landing_url=url,
        referrer=referrer or None,
        site_id=site.id if site else (campaign.site_id if campaign else None),
        source_id=source.id if source else None,
        campaign_id=campaign.id if campaign else None,
        utm=utm,
    )
