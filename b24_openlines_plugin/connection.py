"""A connected portal: finishing OAuth, and a REST client per portal that keeps its tokens fresh.

Tokens rotate on every refresh and the old pair dies at once, so a refresh must happen once per
portal and its result must be saved before anyone uses it: one lock per portal in this process,
and a compare-and-swap write against other processes. A process that loses the race reads the
winner's pair instead of refreshing again.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from b24_openlines_plugin import REQUIRED_SCOPES
from b24_openlines_plugin.bitrix.client import Credentials, RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.event_queue import granted_scopes, unbind_handlers, wanted_events
from b24_openlines_plugin.bitrix.limits import bucket_for
from b24_openlines_plugin.bitrix.oauth import (
    allowed_oauth_servers,
    exchange_code,
    oauth_server_for,
    refresh_tokens,
)
from b24_openlines_plugin.bitrix.records import TokenGrant
from b24_openlines_plugin.context import Portal
from b24_openlines_plugin.events import handler_url
from b24_openlines_plugin.health import (
    RECONNECT,
    UNREACHABLE,
    error_status,
    problem_text,
    record_problem,
)
from b24_openlines_plugin.i18n import _
from b24_openlines_plugin.settings import B24Settings, stored_settings
from b24_openlines_plugin.state import (
    PROBLEM,
    Connection,
    connection_of,
    not_connected,
    save_connection,
    secrets_of,
)
from hooks.errors import BadRequest, Conflict, Forbidden, HookError, RetryLater, UpstreamError
from hooks.models import ConnectionCheck, Integration, OAuthOutcome, Status
from hooks.services import HostServices

MAX_QUERY_VALUE = 500


def _credentials(settings: B24Settings) -> tuple[str, str]:
    if not settings.client_id or settings.client_secret is None:
        raise BadRequest("Save the client id and client secret before connecting the portal")
    return settings.client_id, settings.client_secret.get_secret_value()


def _token_secrets(grant: TokenGrant) -> dict[str, SecretStr]:
    return {
        "access_token": SecretStr(grant.access_token),
        "refresh_token": SecretStr(grant.refresh_token),
    }


def _expires_at(grant: TokenGrant) -> datetime:
    if grant.expires is not None:
        return datetime.fromtimestamp(grant.expires, UTC)
    return datetime.now(UTC) + timedelta(seconds=grant.expires_in)


def _portal_now(grant: TokenGrant) -> datetime:
    """The portal's time as it issued the grant (``expires`` is its clock), else ours: what
    the portal's own timestamps are compared with, whatever our clock's skew."""
    if grant.expires is not None:
        return datetime.fromtimestamp(grant.expires - grant.expires_in, UTC)
    return datetime.now(UTC)


def _refreshed(grant: TokenGrant) -> dict[str, str]:
    """The connection's part a refresh changes."""
    return {"access_expires_at": _expires_at(grant).isoformat()}


async def connect(
    integration: Integration, query: Mapping[str, str], host: HostServices
) -> OAuthOutcome:
    """Finish OAuth; a failure is remembered (``Connection.problem``), so the settings page and
    the integrations list say what went wrong and what to do until a connection works."""
    try:
        return await _connect(integration, query, host)
    except RetryLater:
        await record_problem(host, integration.id, UNREACHABLE)
        raise
    except HookError as exc:
        await record_problem(host, integration.id, exc.code)
        raise


async def _connect(
    integration: Integration, query: Mapping[str, str], host: HostServices
) -> OAuthOutcome:
    """Exchange the callback's code for tokens, after checking who and where it is from."""
    fields = {}
    for name in ("code", "domain", "member_id", "server_domain"):
        value = query.get(name, "").strip()
        if not value or len(value) > MAX_QUERY_VALUE:
            raise BadRequest(f"The OAuth callback has no valid {name!r}")
        fields[name] = value
    settings = stored_settings(integration)
    client_id, client_secret = _credentials(settings)
    portal_url = settings.portal_url
    if portal_url is None:
        raise BadRequest("Save the portal address before connecting it")
    portal_host = urlsplit(portal_url).netloc
    if fields["domain"].lower() != portal_host:
        raise Forbidden(
            f"Bitrix24 authorized portal {fields['domain'][:100]!r}, but the settings name "
            f"{portal_host!r}: connect from the portal in the settings",
            code="wrong_portal",
        )
    server = oauth_server_for(fields["server_domain"], allowed_oauth_servers())
    grant = await exchange_code(
        host.http, server, client_id=client_id, client_secret=client_secret, code=fields["code"]
    )
    if (
        grant.member_id != fields["member_id"]
        or urlsplit(grant.client_endpoint).netloc != portal_host
    ):
        raise Forbidden("The OAuth server's answer names another portal", code="wrong_portal")
    connected = Connection(
        member_id=grant.member_id,
        domain=portal_host,
        client_endpoint=grant.client_endpoint,
        server_endpoint=grant.server_endpoint,
        oauth_server=server,
        scope=grant.scope,
        user_id=grant.user_id,
        access_expires_at=_expires_at(grant),
        connected_at=_portal_now(grant),
        catchup=None,  # a (re)connected portal starts its catch-up afresh
    )
    return OAuthOutcome(
        secrets=_token_secrets(grant),
        connection=connected.to_json(),
        message=_("Portal %(domain)s connected", domain=portal_host),
    )


class TokenKeeper:
    """Refreshes one integration's tokens and saves the rotated pair with compare-and-swap."""

    def __init__(self, integration_id: int, host: HostServices) -> None:
        self.integration_id = integration_id
        self.host = host

    async def _current(self) -> Integration:
        integration = await self.host.integrations.get(self.integration_id)
        if integration is None:
            raise UpstreamError("The integration was deleted")
        return integration

    async def refresh(self, stale_access_token: str) -> str:
        integration = await self._current()
        secrets = secrets_of(integration)
        stored = secrets.token("access_token")
        if stored != stale_access_token:
            return stored  # another process refreshed already
        client_id, client_secret = _credentials(stored_settings(integration))
        server = connection_of(integration).oauth_server
        if server is None:
            raise not_connected()
        try:
            grant = await refresh_tokens(
                self.host.http,
                server,
                client_id=client_id,
                client_secret=client_secret,
                refresh_token=secrets.token("refresh_token"),
            )
        except BitrixError as exc:
            latest = secrets_of(await self._current()).token("access_token")
            if latest != stale_access_token:
                return latest  # lost the race to another process
            await record_problem(self.host, self.integration_id, RECONNECT)
            raise UpstreamError(
                f"Bitrix24 refused to renew the access ({exc.b24_code}): connect the portal again",
                code=RECONNECT,
            ) from exc
        try:
            await self.host.integrations.update(
                integration.id,
                expected_version=integration.version,
                secrets=_token_secrets(grant),
                connection=_refreshed(grant),
            )
        except Conflict:
            # Settings were saved meanwhile: write the pair again on top of the new version.
            newer = await self._current()
            await self.host.integrations.update(
                newer.id,
                expected_version=newer.version,
                secrets=_token_secrets(grant),
                connection=_refreshed(grant),
            )
        return grant.access_token


# One client per portal and per host HTTP client: concurrent appeals share its batches and its
# token refresh. Its rate-limit bucket is the host's (``host.rate_limits``), shared with the
# host's other processes.
_clients: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[int, tuple[int, RestClient]]] = (
    weakref.WeakKeyDictionary()
)


def rest_client(integration: Integration, host: HostServices) -> RestClient:
    endpoint = connection_of(integration).endpoint
    per_http = _clients.setdefault(host.http, {})
    seen = per_http.get(integration.id)
    if seen is not None and seen[1].endpoint == endpoint:
        version, client = seen
        if integration.version > version:  # stored tokens are newer than the ones in memory
            client.credentials.token = secrets_of(integration).token("access_token")
            plan = stored_settings(integration).plan  # and the plan may have changed
            client.bucket = bucket_for(host.rate_limits, endpoint, plan)
            per_http[integration.id] = (integration.version, client)
        return client
    keeper = TokenKeeper(integration.id, host)
    client = RestClient(
        host.http,
        endpoint,
        Credentials(secrets_of(integration).token("access_token"), keeper.refresh),
        bucket_for(host.rate_limits, endpoint, stored_settings(integration).plan),
        metrics=host.metrics,
        integration_id=integration.id,
    )
    per_http[integration.id] = (integration.version, client)
    return client


# --- a person's actions on the connection ------------------------------------------------


async def act(integration: Integration, action: str, host: HostServices) -> ConnectionCheck:
    if action == "check":
        return await _check(integration, host)
    if action == "disconnect":
        return await _disconnect(integration, host)
    raise BadRequest(f"Unknown action {action!r}")


async def _check(integration: Integration, host: HostServices) -> ConnectionCheck:
    """A live call with the stored tokens (``scope``: what access the portal grants now)."""
    connection = connection_of(integration)
    if not connection.connected:
        return ConnectionCheck(status=error_status(problem_text("not_connected")))
    try:
        scopes = await granted_scopes(rest_client(integration, host))
    except RetryLater:
        return ConnectionCheck(status=error_status(problem_text(UNREACHABLE)))
    except HookError as exc:  # Bitrix24's refusal, a refused refresh (``reconnect_required``)
        await record_problem(host, integration.id, exc.code)
        return ConnectionCheck(status=error_status(problem_text(exc.code)))
    await save_connection(host, integration.id, {PROBLEM: None, "scope": scopes})
    missing = [scope for scope in REQUIRED_SCOPES if scope not in scopes]
    if missing:
        names = ", ".join(missing)
        return ConnectionCheck(
            status=Status(
                level="warning",
                text=_(
                    "The token works, but the application lacks the scopes: %(names)s. Add them "
                    "in the local application and press “Reconnect”.",
                    names=names,
                ),
            )
        )
    domain = connection.domain or ""
    return ConnectionCheck(
        status=Status(
            level="ok",
            text=_(
                "The connection works: %(domain)s answered, every scope is granted.",
                domain=domain,
            ),
        )
    )


async def _disconnect(integration: Integration, host: HostServices) -> ConnectionCheck:
    """Remove the plugin's handlers from the portal (so it stops sending), then forget the
    tokens and the portal's identity; the settings stay for reconnecting. A portal that cannot
    be reached or refuses still gets disconnected here, and the page says what is left to do."""
    unbound = await _unbind(integration, host)
    await save_connection(
        host,
        integration.id,
        dict.fromkeys(Connection.model_fields),  # the catch-up too: a new portal starts afresh
        secrets={"access_token": None, "refresh_token": None},
    )
    if not unbound:
        return ConnectionCheck(
            status=Status(
                level="warning",
                text=_(
                    "The portal is disconnected: the tokens are deleted, the settings kept. The "
                    "portal could not be asked to stop sending events: remove this application's "
                    "handlers in Bitrix24 (Developer resources → Integrations), or connect again."
                ),
            )
        )
    return ConnectionCheck(
        status=Status(
            level="off",
            text=_(
                "The portal is disconnected: the tokens are deleted, the settings kept. To "
                "connect again, press “Connect Bitrix24”."
            ),
        )
    )


async def _unbind(integration: Integration, host: HostServices) -> bool:
    """The plugin's own handlers, removed; False when the portal could not be asked."""
    portal = Portal.of(integration, host)
    if not portal.connection.connected:
        return True  # nothing was bound with these tokens
    bound = portal.connection.catchup
    entity = (bound.entity if bound else None) or portal.settings.entity  # what was bound
    try:
        await unbind_handlers(
            rest_client(integration, host), handler_url(integration, host), wanted_events(entity)
        )
    except HookError:
        return False
    return True
