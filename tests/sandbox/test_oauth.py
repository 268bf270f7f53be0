"""The OAuth server: authorize page, redirect, token exchange, expiry, single use, rotation."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.sandbox.conftest import PORTAL, REDIRECT, Running, fixture_json

pytestmark = pytest.mark.anyio


async def allow(running: Running, state: str = "xyz") -> dict[str, str]:
    config = running.sandbox.config
    response = await running.client.post(
        "/oauth/authorize/", data={"client_id": config.client_id, "state": state}
    )
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


async def exchange(running: Running, **params: str) -> tuple[int, dict[str, object]]:
    config = running.sandbox.config
    query = {"client_id": config.client_id, "client_secret": config.client_secret, **params}
    response = await running.client.get("/oauth/token/", params=query)
    return response.status_code, response.json()


async def test_full_dance_from_consent_page_to_a_rest_call(running: Running) -> None:
    config = running.sandbox.config
    page = await running.client.get(
        "/oauth/authorize/", params={"client_id": config.client_id, "state": "xyz"}
    )
    assert page.status_code == 200
    assert 'action="/oauth/authorize/"' in page.text and "Allow" in page.text

    query = await allow(running)
    assert list(query) == ["code", "state", "domain", "member_id", "scope", "server_domain"]
    assert query["state"] == "xyz"
    assert query["domain"] == query["server_domain"] == "127.0.0.1:8100"
    assert query["member_id"] == config.member_id
    assert query["scope"] == "crm,imopenlines,im,contact_center"

    status, tokens = await exchange(running, grant_type="authorization_code", code=query["code"])
    assert status == 200
    example = fixture_json("oauth.token.refresh_token.response.json")
    assert list(tokens) == list(example)  # authorization_code answers with expires/user_id too
    assert set(fixture_json("oauth.token.authorization_code.response.json")) <= set(tokens)
    assert tokens["domain"] == "127.0.0.1:8100"
    assert tokens["client_endpoint"] == tokens["server_endpoint"] == PORTAL + "/rest/"
    assert tokens["status"] == "L" and tokens["expires_in"] == 3600 and tokens["user_id"] == 1
    assert tokens["expires"] == int(running.clock.now) + 3600

    info = await running.ok("app.info", str(tokens["access_token"]))
    assert info["result"]["client_id"] == config.client_id
    assert info["result"]["install"]["member_id"] == config.member_id


async def test_the_token_endpoint_also_takes_a_form_post(running: Running) -> None:
    query = await allow(running)
    config = running.sandbox.config
    response = await running.client.post(
        "/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "code": query["code"],
        },
    )
    assert response.status_code == 200 and response.json()["access_token"]


async def test_the_consent_can_be_given_by_another_user(running: Running) -> None:
    tokens = await running.authorize(user_id=2)
    assert tokens["user_id"] == 2


async def test_unknown_client_id_gets_an_error_page_and_no_redirect(running: Running) -> None:
    page = await running.client.get("/oauth/authorize/", params={"client_id": "local.nope"})
    assert page.status_code == 400
    assert "text/html" in page.headers["content-type"] and "invalid_client" in page.text
    posted = await running.client.post("/oauth/authorize/", data={"client_id": "local.nope"})
    assert posted.status_code == 400 and "location" not in posted.headers


async def test_an_app_without_redirect_url_cannot_be_authorized(running: Running) -> None:
    running.sandbox.app.redirect_uri = ""
    page = await running.client.get(
        "/oauth/authorize/", params={"client_id": running.sandbox.config.client_id}
    )
    assert page.status_code == 400 and "handler path" in page.text


async def test_redirect_url_with_a_query_keeps_it(running: Running) -> None:
    running.sandbox.app.redirect_uri = REDIRECT + "?integration=7"
    config = running.sandbox.config
    response = await running.client.post(
        "/oauth/authorize/", data={"client_id": config.client_id, "state": "a"}
    )
    query = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    assert query["integration"] == "7" and query["state"] == "a"


async def test_a_code_is_single_use(running: Running) -> None:
    code = (await allow(running))["code"]
    assert (await exchange(running, grant_type="authorization_code", code=code))[0] == 200
    status, body = await exchange(running, grant_type="authorization_code", code=code)
    assert (status, body) == (400, fixture_json("error.invalid_grant.json"))


async def test_a_code_expires_after_30_seconds(running: Running) -> None:
    code = (await allow(running))["code"]
    running.clock.advance(31)
    status, body = await exchange(running, grant_type="authorization_code", code=code)
    assert (status, body) == (400, {"error": "invalid_grant"})


async def test_a_code_within_30_seconds_is_fine(running: Running) -> None:
    code = (await allow(running))["code"]
    running.clock.advance(29)
    assert (await exchange(running, grant_type="authorization_code", code=code))[0] == 200


async def test_refresh_rotates_and_retires_the_old_pair(running: Running) -> None:
    first = await running.authorize()
    running.clock.advance(600)
    status, second = await exchange(
        running, grant_type="refresh_token", refresh_token=str(first["refresh_token"])
    )
    assert status == 200
    assert list(second) == list(fixture_json("oauth.token.refresh_token.response.json"))
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires"] == int(running.clock.now) + 3600

    # the old refresh token is used up …
    status, body = await exchange(
        running, grant_type="refresh_token", refresh_token=str(first["refresh_token"])
    )
    assert (status, body) == (400, fixture_json("error.invalid_grant.json"))
    # … and the access token issued with it no longer works
    old = await running.rest("app.info", str(first["access_token"]))
    assert (old.status_code, old.json()) == (401, fixture_json("error.invalid_token.json"))
    assert (await running.rest("app.info", str(second["access_token"]))).status_code == 200


async def test_other_pairs_survive_a_refresh(running: Running) -> None:
    one, two = await running.authorize(), await running.authorize()
    await exchange(running, grant_type="refresh_token", refresh_token=str(one["refresh_token"]))
    assert (await running.rest("app.info", str(two["access_token"]))).status_code == 200


async def test_access_token_expires_after_an_hour(running: Running) -> None:
    tokens = await running.authorize()
    running.clock.advance(3599)
    assert (await running.rest("app.info", str(tokens["access_token"]))).status_code == 200
    running.clock.advance(1)
    expired = await running.rest("app.info", str(tokens["access_token"]))
    assert (expired.status_code, expired.json()) == (401, fixture_json("error.expired_token.json"))
    # the refresh token still works and gives a working pair
    status, fresh = await exchange(
        running, grant_type="refresh_token", refresh_token=str(tokens["refresh_token"])
    )
    assert status == 200
    assert (await running.rest("app.info", str(fresh["access_token"]))).status_code == 200


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"grant_type": "refresh_token"}, fixture_json("error.invalid_request.oauth.json")),
        (
            {"grant_type": "authorization_code"},
            {"error": "invalid_request", "error_description": 'No "code" parameter found'},
        ),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, {"error": "invalid_grant"}),
        ({"grant_type": "authorization_code", "code": "nope"}, {"error": "invalid_grant"}),
    ],
)
async def test_token_request_errors(
    running: Running, params: dict[str, str], error: dict[str, str]
) -> None:
    assert await exchange(running, **params) == (400, error)


async def test_wrong_client_credentials_are_invalid_client(running: Running) -> None:
    code = (await allow(running))["code"]
    for bad in ({"client_secret": "wrong"}, {"client_id": "local.0.0"}):
        status, body = await exchange(running, grant_type="authorization_code", code=code, **bad)
        assert status == 400 and body["error"] == "invalid_client"
        assert body["error_description"]
    # the code was not consumed by the failed attempts
    assert (await exchange(running, grant_type="authorization_code", code=code))[0] == 200


async def test_missing_grant_type_is_invalid_request(running: Running) -> None:
    status, body = await exchange(running)
    assert status == 400 and body["error"] == "invalid_request"
