"""The reference host's public URLs, lent to plugins as ``host.urls`` (``hooks.services.HostUrls``).

The paths spelled here are those of the routes in ``hooks.host.app``; a test checks that each one
is answered by the app, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from hooks.models import Integration

__all__ = ["PublicUrls"]


@dataclass(frozen=True)
class PublicUrls:
    """The host's URLs under its public base URL (``HostConfig.public_url``, e.g.
    ``https://analytics.example``; a trailing slash is ignored)."""

    base: str

    def _absolute(self, path: str) -> str:
        return self.base.rstrip("/") + path

    def webhook(self, integration: Integration) -> str:
        """``POST /webhooks/{id}/{token}``: the integration's events, its secret token included."""
        token = quote(integration.webhook_token.get_secret_value(), safe="")
        return self._absolute(f"/webhooks/{integration.id}/{token}")

    def oauth_redirect(self) -> str:
        """``GET /oauth2/callback``: where the browser comes back after an authorization."""
        return self._absolute("/oauth2/callback")

    def session_report(self, integration_id: int) -> str:
        """``POST /api/sessions/{id}``: where the site script reports a visitor's session."""
        return self._absolute(f"/api/sessions/{integration_id}")

    def messenger_code(self, integration_id: int) -> str:
        """``POST /api/messenger-codes/{id}``: where the site script asks for a messenger code."""
        return self._absolute(f"/api/messenger-codes/{integration_id}")
