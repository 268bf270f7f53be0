"""The Bitrix24 portal address: what a client may type, and the one form the plugin uses.

Clients type their portal in many shapes (``name.bitrix24.ru``, a custom domain, an ``https://``
URL, the authorization URL pasted whole after replacing YOURDOMAIN, a link copied from the
portal's address bar). All of them reduce to ``https://host[:port]``: a path, query or fragment
is dropped, and said so. Anything else is refused with a message that says what to change,
because a wrong address only shows up much later, as an OAuth page that never loads.
"""

from __future__ import annotations

import ipaddress
import re
from encodings import idna
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit

from b24_openlines_plugin.bitrix.oauth import oauth_server_hosts
from b24_openlines_plugin.i18n import _
from hooks.models import LocalizedText

__all__ = ["Portal", "PortalAddressError", "normalize_portal", "parse_portal"]

_LOOPBACK_NAMES = frozenset({"localhost"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
# A scheme at the start: "ftp://", "http:", "mailto:" (but not "host:8080", a port).
_SCHEME = re.compile(r"([a-z][a-z0-9+-]*):(//)?")
_LDH_LABEL = re.compile(r"[a-z0-9-]+")


class PortalAddressError(ValueError):
    """The portal address cannot be used; ``message`` tells the client what to change."""

    def __init__(self, message: LocalizedText) -> None:
        super().__init__(message.en)
        self.message = message


class Portal(NamedTuple):
    url: str  # https://host[:port]
    dropped: str  # the path, query and fragment cut off ("" when none came with the address)


def normalize_portal(raw: str) -> str:
    """Return the portal as ``https://host[:port]`` (lower case, punycode, no trailing slash)."""
    return parse_portal(raw).url


def parse_portal(raw: str) -> Portal:
    """The portal's address, and what was cut off to get it.

    Plain ``http://`` is accepted only for loopback hosts, where the bundled sandbox portal runs.
    Raises ``PortalAddressError`` with a specific ru/en message otherwise.
    """
    text = raw.strip()
    if not text:
        raise PortalAddressError(_("Enter your Bitrix24 portal address, e.g. name.bitrix24.ru"))
    if "yourdomain" in text.lower():
        raise PortalAddressError(
            _(
                "Replace YOURDOMAIN with your own Bitrix24 portal address: e.g. name.bitrix24.ru "
                "or a custom domain such as b24.example.ru"
            )
        )
    if any(char.isspace() for char in text):
        raise PortalAddressError(_("The portal address must not contain spaces"))
    scheme, parts = _split(text)
    if "@" in parts.netloc:
        raise PortalAddressError(
            _("Enter the portal address without a user name or password (no '…@')")
        )
    host = _host(parts)
    port = _port(parts)
    if scheme == "http" and not _is_loopback(host):
        raise PortalAddressError(
            _("A Bitrix24 portal is reached over https:// only: use https:// or just the address")
        )
    if host in oauth_server_hosts():
        raise PortalAddressError(
            _(
                "%(host)s is Bitrix24's authorization server, not your portal: enter your portal's "
                "address, e.g. name.bitrix24.ru",
                host=host,
            )
        )
    shown_host = f"[{host}]" if ":" in host else host
    shown_port = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return Portal(f"{scheme}://{shown_host}{shown_port}", _dropped(parts))


def _split(text: str) -> tuple[str, SplitResult]:
    """Split into (scheme, parts); an address without a scheme is read as https."""
    match = _SCHEME.match(text.lower())
    rest = text[match.end() :] if match else ""
    if match and (match.group(2) or not rest[:1].isdigit()):
        scheme = match.group(1)
        if scheme not in _DEFAULT_PORTS:
            raise PortalAddressError(
                _(
                    "A '%(scheme)s:' address does not work: a Bitrix24 portal is reached over "
                    "https://",
                    scheme=scheme,
                )
            )
        if not match.group(2):
            raise PortalAddressError(
                _(
                    "'%(scheme)s:' must be followed by two slashes: %(scheme)s://name.bitrix24.ru",
                    scheme=scheme,
                )
            )
    else:
        scheme, text = "https", "https://" + text
    try:
        return scheme, urlsplit(text)
    except ValueError as exc:  # unbalanced brackets of an IPv6 literal
        raise _invalid_characters() from exc


def _dropped(parts: SplitResult) -> str:
    """What follows the address: only the host matters, so a path, query or fragment goes."""
    path = "" if parts.path == "/" else parts.path
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return path + query + fragment


def _host(parts: SplitResult) -> str:
    """The host in ASCII lower case, or an error saying what is wrong with it."""
    host = parts.hostname or ""
    if not host:
        raise PortalAddressError(_("The portal address is missing: e.g. name.bitrix24.ru"))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _domain_name(host)
    if address.is_loopback:
        return address.compressed
    raise _ip_address_error()


def _domain_name(host: str) -> str:
    if host in _LOOPBACK_NAMES:
        return host
    labels = idna.dots.split(host.removesuffix("."))
    ascii_labels = [_ascii_label(label) for label in labels]
    if len(ascii_labels) < 2:
        raise PortalAddressError(
            _("Enter the full address, with its domain zone: e.g. name.bitrix24.ru")
        )
    if ascii_labels[-1].isdigit():  # 127.1, 10.0.0.1.5: numbers, not a name
        raise _ip_address_error()
    name = ".".join(ascii_labels)
    if len(name) > 253:
        raise PortalAddressError(_("The portal address is too long (over 253 characters)"))
    return name


def _ascii_label(label: str) -> str:
    """One dot-separated part of the name, punycoded, checked against the hostname rules."""
    if not label:
        raise PortalAddressError(_("The portal address has two dots in a row or starts with a dot"))
    try:
        ascii_label = label if label.isascii() else idna.ToASCII(label).decode("ascii")
    except UnicodeError as exc:
        raise _invalid_characters() from exc
    if len(ascii_label) > 63:
        raise PortalAddressError(
            _("A part of the address between dots is longer than 63 characters")
        )
    if not _LDH_LABEL.fullmatch(ascii_label):
        raise _invalid_characters()
    if ascii_label.startswith("-") or ascii_label.endswith("-"):
        raise PortalAddressError(
            _("A part of the address between dots cannot start or end with a hyphen")
        )
    return ascii_label


def _port(parts: SplitResult) -> int | None:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or parts.netloc.endswith(":"):
        raise PortalAddressError(
            _(
                "Invalid port: a number from 1 to 65535 must follow the colon (usually none is "
                "needed)"
            )
        )
    return port


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _invalid_characters() -> PortalAddressError:
    return PortalAddressError(
        _("The portal address has invalid characters: letters, digits, hyphens and dots only")
    )


def _ip_address_error() -> PortalAddressError:
    return PortalAddressError(
        _(
            "Enter the portal by name, not by IP address: a Bitrix24 portal is reached by its "
            "name, e.g. name.bitrix24.ru"
        )
    )
