"""Which of the account's sites a page is on: the page's host against the catalog's domains.

Visitors and clients spell one site in many ways: ``www.``, upper case, a trailing dot, a port,
Unicode or punycode, a mobile or city subdomain, and a client may store the domain as a URL.
All of them reduce to one comparable name, and a subdomain counts for its parent site, so that a
visit on ``m.shop.example.ru`` is still the shop's. Names are compared by whole labels only:
``evilshop.example.ru`` is not ``shop.example.ru``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from encodings import idna
from urllib.parse import urlsplit

from hooks.models import Site

__all__ = ["host_name", "site_of"]

_LOOPBACK = "localhost"  # what every loopback name and address compares as


def host_name(text: str) -> str | None:
    """The host of a URL or of a bare ``host[:port]``: ASCII (punycode), case-folded, without a
    trailing dot; an IP address in its canonical form. None when there is no usable host."""
    text = text.strip()
    address = _address(text.removeprefix("[").removesuffix("]"))  # a bare "::1" has no URL form
    if address is not None:
        return address.compressed
    try:
        host = urlsplit(text if "://" in text else "//" + text.removeprefix("//")).hostname
    except ValueError:  # unbalanced brackets of an IPv6 literal
        return None
    if not host:
        return None
    address = _address(host)
    if address is not None:
        return address.compressed
    try:
        return ".".join(map(_ascii_label, idna.dots.split(host.casefold().removesuffix("."))))
    except UnicodeError:
        return None


def site_of(url: str, sites: Iterable[Site]) -> Site | None:
    """The site whose domain is the page's host or its nearest parent domain.

    The most specific domain wins; among equal ones, the one spelled as the page's host (a
    catalog may list ``127.0.0.1`` and ``localhost``, or ``www.x.ru`` and ``x.ru``, apart).
    """
    page = host_name(url)
    if page is None:
        return None
    found = [
        (site, domain)
        for site in sites
        if (domain := host_name(site.domain)) is not None and _within(page, domain)
    ]
    best = max(found, key=lambda item: (_key(item[1]).count("."), item[1] == page), default=None)
    return best[0] if best else None


def _ascii_label(label: str) -> str:
    """One label in IDNA 2003's ASCII form. A punycode label is decoded first, so that one
    spelled by an IDNA 2008 browser (``faß`` as ``xn--fa-hia``) meets its Unicode spelling."""
    if label.startswith("xn--"):
        label = label[4:].encode("ascii").decode("punycode")
    return idna.ToASCII(label).decode("ascii")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _key(name: str) -> str:
    """What all names of one site share: loopback is one name, and ``www.`` is nothing (unless
    nothing but a top-level domain would be left, as in ``www.ru``)."""
    address = _address(name)
    if name == _LOOPBACK or (address is not None and address.is_loopback):
        return _LOOPBACK
    return name.removeprefix("www.") if name.count(".") >= 2 else name


def _within(page: str, domain: str) -> bool:
    """The page's host is the domain or one of its subdomains. Addresses and single labels
    (loopback, ``ru``) have no subdomains: they match only themselves."""
    page_key, domain_key = _key(page), _key(domain)
    if page_key == domain_key:
        return True
    return (
        "." in domain_key and _address(domain_key) is None and page_key.endswith("." + domain_key)
    )
