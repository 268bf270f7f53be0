"""REST transport: parameter styles, the time object, Bitrix24's errors and both limits."""

from __future__ import annotations

import pytest

from b24_openlines_plugin.sandbox import ENTERPRISE_RATE, STANDARD_RATE
from tests.sandbox.conftest import Factory, Running, fixture_json

pytestmark = pytest.mark.anyio


async def test_answers_carry_the_documented_time_object(running: Running, token: str) -> None:
    body = await running.ok("scope", token)
    assert body["result"] == ["crm", "imopenlines", "im", "contact_center"]
    assert list(body["time"]) == list(fixture_json("rest.time_object.operating.json")["time"])
    assert body["time"]["start"] == running.clock.now
    assert body["time"]["date_start"] == "2026-09-21T17:13:20+03:00"  # Moscow time


async def test_parameters_from_json_form_and_query_alike(running: Running, token: str) -> None:
    lead_id = min(running.sandbox.portal.leads)
    by_json = await running.client.post(
        "/rest/crm.lead.list.json", json={"auth": token, "filter": {">ID": lead_id}}
    )
    by_form = await running.client.post(
        "/rest/crm.lead.list", data={"auth": token, "filter[>ID]": str(lead_id)}
    )
    by_query = await running.client.get(
        f"/rest/crm.lead.list.json?auth={token}&filter%5B%3EID%5D={lead_id}"
    )
    results = [r.json()["result"] for r in (by_json, by_form, by_query)]
    assert results[0] == results[1] == results[2]
    assert [row["ID"] for row in results[0]] == [str(lead_id + 1)]


async def test_auth_in_the_query_with_a_json_body(running: Running, token: str) -> None:
    response = await running.client.post(f"/rest/scope?auth={token}", json={})
    assert response.status_code == 200


async def test_no_auth(running: Running) -> None:
    response = await running.rest("crm.lead.get", None, id=1)
    assert (response.status_code, response.json()) == (
        401,
        fixture_json("error.NO_AUTH_FOUND.json"),
    )


async def test_unknown_token(running: Running) -> None:
    response = await running.rest("crm.lead.get", "0" * 32, id=1)
    assert (response.status_code, response.json()) == (
        401,
        fixture_json("error.invalid_token.json"),
    )


async def test_unknown_method(running: Running, token: str) -> None:
    response = await running.rest("crm.lead.teleport", token)
    assert response.status_code == 404
    assert response.json() == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }


async def test_method_names_ignore_case(running: Running, token: str) -> None:
    assert (await running.rest("IMOPENLINES.crm.chat.getlastid", token)).status_code == 400


async def test_insufficient_scope(running: Running, token: str) -> None:
    response = await running.rest("user.current", token)  # scope "user" is not granted
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


@pytest.mark.parametrize("granted", ["user", "user_brief", "user_basic"])
async def test_user_current_takes_the_user_scope_or_a_limited_one(
    running: Running, granted: str
) -> None:
    """user-current.md: ``user`` or either limited version (``user_brief``, ``user_basic``)."""
    changed = await running.client.put("/sandbox/api/app", json={"scopes": ["crm", granted]})
    assert changed.status_code == 200, changed.text
    token = (await running.authorize(user_id=2))["access_token"]
    current = (await running.ok("user.current", token))["result"]
    assert (current["ID"], current["NAME"], current["LAST_NAME"]) == ("2", "Maria", "Sokolova")
    assert current["ACTIVE"] is True and current["UF_DEPARTMENT"] == [1]


async def test_scope_is_the_one_granted_at_authorization(running: Running) -> None:
    await running.client.put("/sandbox/api/app", json={"scopes": ["crm"]})
    token = (await running.authorize())["access_token"]
    assert (await running.rest("crm.lead.list", token)).status_code == 200
    denied = await running.rest("imopenlines.dialog.get", token, CHAT_ID=1)
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_scope"
    assert (await running.ok("scope", token))["result"] == ["crm"]
    assert "imopenlines" in (await running.ok("scope", token, full=True))["result"]


async def test_argument_errors_are_400(running: Running, token: str) -> None:
    bad_id = await running.rest("crm.lead.get", token, id="abc")
    assert bad_id.status_code == 400
    assert bad_id.json() == {"error": "", "error_description": "ID is not defined or invalid"}
    missing = await running.rest("crm.deal.get", token, id=999999)
    assert missing.json() == {"error": "", "error_description": "Not found"}
    bad_filter = await running.rest("crm.lead.list", token, filter="ID>5")
    assert bad_filter.json()["error_description"] == "Parameter 'filter' must be array."
    no_entity = await running.rest("imopenlines.crm.chat.get", token, CRM_ENTITY_TYPE="lead")
    assert (no_entity.status_code, no_entity.json()) == (
        400,
        fixture_json("imopenlines.crm.chat.get.error.json"),
    )


async def test_leaky_bucket_refuses_the_51st_request(make_sandbox: Factory) -> None:
    running = await make_sandbox(rate_limit=STANDARD_RATE)
    token = (await running.authorize())["access_token"]  # the OAuth server has no bucket
    for _ in range(50):
        assert (await running.rest("scope", token)).status_code == 200
    refused = await running.rest("scope", token)
    assert (refused.status_code, refused.json()) == (
        503,
        fixture_json("error.QUERY_LIMIT_EXCEEDED.json"),
    )
    # refused requests do not fill the bucket; half a second drains one request at 2/s
    running.clock.advance(0.5)
    assert (await running.rest("scope", token)).status_code == 200
    assert (await running.rest("scope", token)).status_code == 503
    running.clock.advance(10)
    for _ in range(20):
        assert (await running.rest("scope", token)).status_code == 200
    assert (await running.rest("scope", token)).status_code == 503


async def test_bucket_counts_requests_before_auth(make_sandbox: Factory) -> None:
    running = await make_sandbox(rate_limit=STANDARD_RATE)
    for _ in range(50):
        assert (await running.rest("scope", None)).status_code == 401
    assert (await running.rest("scope", None)).status_code == 503


async def test_enterprise_bucket(make_sandbox: Factory) -> None:
    running = await make_sandbox(rate_limit=ENTERPRISE_RATE)
    token = (await running.authorize())["access_token"]
    statuses = [(await running.rest("scope", token)).status_code for _ in range(251)]
    assert statuses.count(200) == 250 and statuses[-1] == 503


async def test_a_batch_is_one_request_for_the_bucket(make_sandbox: Factory) -> None:
    running = await make_sandbox(rate_limit=STANDARD_RATE)
    token = (await running.authorize())["access_token"]
    cmd = {f"c{i}": "scope" for i in range(50)}
    for _ in range(50):
        assert (await running.rest("batch", token, cmd=cmd)).status_code == 200
    assert (await running.rest("batch", token, cmd=cmd)).status_code == 503


async def test_operating_time_limit_blocks_one_method(make_sandbox: Factory) -> None:
    running = await make_sandbox(operating_cost=100.0, operating_limit=480.0)
    token = (await running.authorize())["access_token"]
    lead_id = min(running.sandbox.portal.leads)
    for used in (100, 200, 300, 400, 500):
        body = await running.ok("crm.lead.get", token, id=lead_id)
        assert body["time"]["operating"] == used
        assert body["time"]["operating_reset_at"] == int(running.clock.now // 60) * 60 + 600
    blocked = await running.rest("crm.lead.get", token, id=lead_id)
    assert (blocked.status_code, blocked.json()) == (
        429,
        fixture_json("error.OPERATION_TIME_LIMIT.json"),
    )
    assert (await running.rest("crm.deal.list", token)).status_code == 200  # other methods run
    running.clock.advance(601)
    assert (await running.rest("crm.lead.get", token, id=lead_id)).status_code == 200


async def test_injected_faults(running: Running, token: str) -> None:
    created = await running.client.post(
        "/sandbox/api/faults", json={"method": "crm.lead.get", "error": "INTERNAL_SERVER_ERROR"}
    )
    assert created.status_code == 201 and created.json()["status"] == 500
    lead_id = min(running.sandbox.portal.leads)
    failed = await running.rest("crm.lead.get", token, id=lead_id)
    assert failed.status_code == 500
    assert failed.json() == {
        "error": "INTERNAL_SERVER_ERROR",
        "error_description": "Internal server error",
    }
    assert (await running.rest("crm.lead.get", token, id=lead_id)).status_code == 200

    await running.client.post(
        "/sandbox/api/faults", json={"error": "QUERY_LIMIT_EXCEEDED", "times": 2}
    )
    assert (await running.client.get("/sandbox/api/faults")).json()["pending"][0]["times"] == 2
    assert (await running.rest("scope", token)).status_code == 503
    await running.client.delete("/sandbox/api/faults")
    assert (await running.rest("scope", token)).status_code == 200


async def test_app_info_and_profile(running: Running, token: str) -> None:
    info = (await running.ok("app.info", token))["result"]
    assert info["STATUS"] == "L" and info["INSTALLED"] is True
    assert info["scope"] == "crm,imopenlines,im,contact_center" and info["user_id"] == 1
    assert info["install"]["domain"] == "127.0.0.1:8100"
    me = (await running.ok("profile", token))["result"]
    assert me["ADMIN"] is True and me["TIME_ZONE_OFFSET"] == 10800
