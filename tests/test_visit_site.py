"""A visit carries the site it happened on, and so does the appeal attributed to it (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from b24_openlines_plugin.attribution import from_visit
from b24_openlines_plugin.settings import B24Settings, MessengerRow
from hooks.host.catalog import DEMO_CATALOG
from hooks.host.sites import site_of
from hooks.host.visits import new_visitor_session
from hooks.models import Site, VisitorSession

SITES = [
    Site(id=1, name="Demo", domain="127.0.0.1"),
    Site(id=2, name="Shop", domain="shop.example.ru"),
    Site(id=3, name="Shop, St Petersburg", domain="spb.shop.example.ru"),
    Site(id=4, name="Blog", domain="https://Blog.Example.org/"),  # stored as a URL
    Site(id=5, name="Магазин", domain="магазин.рф"),
    Site(id=6, name="Fass", domain="faß.de"),
    Site(id=7, name="News", domain="www.news.example.com"),
    Site(id=8, name="Office", domain="10.0.0.5"),
]


@pytest.mark.parametrize(
    ("url", "site_id"),
    [
        ("https://shop.example.ru/", 2),
        ("https://www.shop.example.ru/item?utm_source=yandex", 2),
        ("https://Shop.Example.RU./", 2),
        ("https://shop.example.ru:8443/", 2),
        ("https://m.shop.example.ru/", 2),
        ("https://spb.shop.example.ru/", 3),  # the most specific site wins
        ("https://www.spb.shop.example.ru/", 3),
        ("https://m.spb.shop.example.ru/", 3),
        ("https://blog.example.org/post", 4),
        ("https://магазин.рф/", 5),
        ("https://МАГАЗИН.РФ/", 5),
        ("https://www.xn--80aairftm.xn--p1ai/", 5),
        ("https://xn--fa-hia.de/", 6),  # ß as a browser's IDNA 2008 punycode
        ("https://news.example.com/", 7),
        ("https://www.news.example.com/", 7),
        ("http://127.0.0.1:8100/landing", 1),
        ("http://localhost:8000/", 1),
        ("http://LOCALHOST./", 1),
        ("http://[::1]:8000/", 1),
        ("http://10.0.0.5/", 8),
        # Not a label boundary, a parent, a lookalike or another address: no site.
        ("https://evilshop.example.ru/", None),
        ("https://shop.example.ru.evil.com/", None),
        ("https://example.ru/", None),
        ("https://shop-example.ru/", None),
        ("https://blog.example.org.evil.com/", None),
        ("https://xn--80aairftm.com/", None),
        ("http://192.168.0.1/", None),
        ("http://1.10.0.0.5/", None),  # an address has no subdomains
        ("http://app.localhost/", None),  # nor has a loopback name
        ("http://localhost.example.ru/", None),
        ("http://10.0.0.6/", None),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_a_page_is_on_the_site_of_its_normalized_domain(url: str, site_id: int | None) -> None:
    site = site_of(url, SITES)
    assert (site.id if site else None) == site_id
    reversed_site = site_of(url, reversed(SITES))  # not a matter of the catalog's order
    assert (reversed_site.id if reversed_site else None) == site_id


@pytest.mark.parametrize(
    ("domains", "url", "site_id"),
    [
        # Two sites that are one name once normalized: the one spelled as the page wins.
        (["localhost", "127.0.0.1"], "http://127.0.0.1/", 2),
        (["localhost", "127.0.0.1"], "http://localhost/", 1),
        (["localhost", "127.0.0.1"], "http://[::1]/", 1),  # else the catalog's first
        (["www.x.ru", "x.ru"], "https://x.ru/", 2),
        (["www.x.ru", "x.ru"], "https://www.x.ru/", 1),
        # A top-level domain is no site's parent, and www. is kept when only it would be left.
        (["ru"], "https://shop.ru/", None),
        (["www.ru"], "https://shop.ru/", None),
        (["www.ru"], "https://www.ru/", 1),
        # An unusable catalog domain matches nothing.
        (["", "a..b", "https://"], "https://a.b/", None),
    ],
)
def test_ties_and_degenerate_catalog_domains(
    domains: list[str], url: str, site_id: int | None
) -> None:
    sites = [Site(id=n, name=f"Site {n}", domain=d) for n, d in enumerate(domains, start=1)]
    site = site_of(url, sites)
    assert (site.id if site else None) == site_id


@pytest.mark.parametrize(
    ("url", "site_id"),
    [
        ("https://m.shop.example.ru/?utm_campaign=spring_sale", 2),  # the page's site first
        ("https://unknown.example.com/?utm_campaign=spring_sale", 1),  # else the campaign's
        ("https://unknown.example.com/", None),
    ],
)
def test_a_visitor_session_takes_the_pages_site_else_the_campaigns(
    url: str, site_id: int | None
) -> None:
    assert new_visitor_session(url, None, DEMO_CATALOG, key=b"k" * 32).site_id == site_id


def visit_on(site_id: int | None) -> VisitorSession:
    return VisitorSession(
        id="v1",
        created_at=datetime.now(UTC),
        landing_url="https://unknown.example.com/",
        site_id=site_id,
        source_id=1,
    )


SOURCE = B24Settings(active=True, traffic_type="source", source_id=5, site_id=1)


@pytest.mark.parametrize(
    ("visit_site", "settings", "site_id"),
    [
        (2, SOURCE, 2),  # the visit's own site
        (None, SOURCE, 1),  # a site unknown to the host: the default site
        (
            None,
            SOURCE.model_copy(
                update={"messenger_map": {"livechat": MessengerRow(source_id=4, site_id=2)}}
            ),
            2,  # the site the settings give the site's live chat
        ),
        (
            None,
            SOURCE.model_copy(
                update={"messenger_map": {"telegrambot": MessengerRow(source_id=4, site_id=2)}}
            ),
            1,  # another messenger's row is not about the site
        ),
        (  # campaign traffic has no site in the settings, whatever one was left from before
            None,
            B24Settings(active=True, traffic_type="campaign", campaign_id=3, site_id=1),
            None,
        ),
    ],
)
def test_a_session_attribution_falls_back_to_the_settings_site(
    visit_site: int | None, settings: B24Settings, site_id: int | None
) -> None:
    attribution = from_visit(visit_on(visit_site), settings)
    assert (attribution.method, attribution.source_id) == ("session", 1)
    assert attribution.site_id == site_id
