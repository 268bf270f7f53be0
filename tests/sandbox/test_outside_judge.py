"""The official Python SDK (b24pysdk) as an outside judge of the sandbox's event deliveries.

Every body the handler site received over HTTP goes through the SDK's own event parser,
``OAuthEventData.from_dict`` (what its FastAPI and Flask integrations run on a handler's
request), so a key the sandbox leaves out or mistypes fails here as it would for an SDK user.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from b24pysdk.api.responses import B24AppInfoResult
from b24pysdk.credentials import OAuthEventData

from tests.sandbox.conftest import HOOKS, Factory, Running

pytestmark = pytest.mark.anyio
EVENTS = ("ONCRMLEADADD", "ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE")
CHAT = {"messages": [{"author": "visitor", "text": "Hello"}], "close": True}


def judged(running: Running, path: str) -> list[tuple[dict[str, str], OAuthEventData]]:
    """Each delivery to ``path``: its form as sent, and the SDK's reading of the same body."""
    return [
        (dict(parse_qsl(body)), OAuthEventData.from_dict(dict(parse_qsl(body))))
        for p, body, _ in running.site.received
        if p == path
    ]


async def bind_all(running: Running, token: str, path: str, auth_type: int = 0) -> None:
    for event in EVENTS:
        await running.ok(
            "event.bind", token, event=event, handler=HOOKS + path, auth_type=auth_type
        )


async def test_the_sdk_reads_every_application_delivery(running: Running, token: str) -> None:
    await bind_all(running, token, "/app")
    await running.chat(**CHAT)
    await running.settled()

    deliveries = judged(running, "/app")
    assert [form["event"] for form, _ in deliveries] == list(EVENTS)
    for form, event in deliveries:
        assert event.event == form["event"]
        assert event.event_handler_id == int(form["event_handler_id"])
        assert event.ts.timestamp() == running.clock.now
        assert event.data == {"FIELDS": {"ID": form["data[FIELDS][ID]"]}}
        auth = event.auth
        assert not auth.is_system and auth.oauth_token is not None
        assert auth.oauth_token.access_token == form["auth[access_token]"]
        assert auth.oauth_token.expires is not None
        assert auth.oauth_token.expires.timestamp() == running.clock.now + 3600
        assert auth.oauth_token.expires_in == 3600
        assert auth.user_id == 1
        assert auth.scope == ["crm", "imopenlines", "im", "contact_center"]
        assert auth.member_id == running.sandbox.config.member_id
        assert auth.application_token == running.sandbox.app.application_token


async def test_the_sdk_reads_outgoing_webhook_deliveries(running: Running) -> None:
    created = await running.client.post(
        "/sandbox/api/outgoing-webhooks", json={"handler": HOOKS + "/hook", "events": EVENTS}
    )
    assert created.status_code == 201, created.text
    await running.chat(**CHAT)
    await running.settled()

    deliveries = judged(running, "/hook")
    assert len(deliveries) == len(EVENTS)
    for _, event in deliveries:
        # No OAuth tokens in a webhook's auth: the SDK sees a system event.
        assert event.auth.is_system and event.auth.user_id is None
        assert event.auth.application_token == created.json()["application_token"]
        assert event.auth.client_endpoint == running.sandbox.config.client_endpoint


async def test_the_sdk_reads_deliveries_without_tokens(make_sandbox: Factory) -> None:
    running = await make_sandbox(event_auth_tokens=False)
    await bind_all(running, (await running.authorize())["access_token"], "/app")
    await running.chat(**CHAT)
    await running.settled()

    deliveries = judged(running, "/app")
    assert len(deliveries) == len(EVENTS)
    assert all(event.auth.is_system and event.auth.scope for _, event in deliveries)


async def test_the_event_user_is_the_one_its_token_belongs_to(make_sandbox: Factory) -> None:
    """The SDK's own check: ``app.info`` asked with the event's token names the same portal
    and user as the event's ``auth`` (a portal without a port, as real ones are)."""
    running = await make_sandbox(public_url="https://portal.example.test")
    await bind_all(running, (await running.authorize())["access_token"], "/operator", 2)
    await running.chat(**CHAT)
    await running.settled()

    deliveries = judged(running, "/operator")
    assert len(deliveries) == len(EVENTS)
    for form, event in deliveries:
        info = await running.ok("app.info", form["auth[access_token]"])
        app_info = B24AppInfoResult.from_dict(info["result"])
        assert event.auth.user_id == app_info.user_id == 2
        assert event.validate_against_app_info(app_info)
