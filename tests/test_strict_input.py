"""Issue 12, item 2: the cases that answered 500 (or the wrong integration) get a 4xx.

Ids in paths and queries are ASCII digits within 64 bits, JSON bodies are bounded in depth,
and what Bitrix24 spells in ASCII is read as ASCII; the fuzz suite (``tests/test_fuzz.py``)
tries the same on every route at random.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tests.conftest import RunningHost
from tests.fuzz.calls import served_routes
from tests.test_host_api import VALID, create
from tests.test_webhook_verify import connected, lead_event, post

pytestmark = pytest.mark.anyio

SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() says yes, int() raises ValueError
ARABIC_INDIC_ONE = "%D9%A1"  # U+0661: int() reads it as 1
ARABIC_INDIC_TWO = "%D9%A2"
TOO_BIG = ["9" * 30, str(2**63)]  # int() takes them; 64-bit integers cannot
READ_AS_ONE = [ARABIC_INDIC_ONE, "01"]  # another spelling of id 1
DEEP = b"[" * 2000 + b"]" * 2000


def odd_id_cases() -> list[tuple[str, str, str]]:
    """Every route with an id in its path, with each odd id; those read as 1 only where a
    record 1 exists (integration 1 does, no inbox item does)."""
    return sorted(
        (method, template, odd)
        for method, template in served_routes()
        if "_id}" in template and method != "OPTIONS"
        for odd in [SUPERSCRIPT_TWO, *TOO_BIG, *([] if "{item_id}" in template else READ_AS_ONE)]
    )


@pytest.mark.parametrize(("method", "template", "odd"), odd_id_cases())
async def test_an_id_that_is_not_ascii_digits_within_64_bits_names_nothing(
    running_host: RunningHost, method: str, template: str, odd: str
) -> None:
    data = await create(running_host)  # integration 1, which U+0661 and 01 must not reach
    token = data["webhook_url"].rsplit("/", 1)[1]
    path = template.format(integration_id=odd, item_id=odd, token=token)
    answer = await running_host.client.request(method, path, content=b"{}")
    assert answer.status_code == 404


async def test_a_webhook_at_arabic_indic_one_is_not_integration_ones(
    running_host: RunningHost,
) -> None:
    path = await connected(running_host)
    token = path.rsplit("/", 1)[1]
    answer = await post(running_host, f"/webhooks/{ARABIC_INDIC_ONE}/{token}", lead_event())
    assert answer.status_code == 404
    assert await running_host.host.repo.list_inbox() == []
    assert (await post(running_host, path, lead_event())).status_code == 200  # the real URL


async def test_settings_put_at_arabic_indic_two_saves_nothing(running_host: RunningHost) -> None:
    await create(running_host)
    second = await create(running_host, "Second")
    answer = await running_host.client.put(
        f"/api/integrations/{ARABIC_INDIC_TWO}/settings", json=VALID
    )
    assert answer.status_code == 404
    after = (await running_host.client.get(f"/api/integrations/{second['id']}")).json()
    assert after["settings"] == second["settings"] and after["updated_at"] == second["updated_at"]


@pytest.mark.parametrize(
    ("path", "name", "odd"),
    [
        (path, name, odd)
        for path, name in [
            ("/api/appeals", "offset"),
            ("/api/appeals", "limit"),
            ("/api/appeals", "integration_id"),
            ("/raw/appeals", "page"),
            ("/raw/appeals", "integration_id"),
            ("/raw/appeals.csv", "integration_id"),
        ]
        for odd in [SUPERSCRIPT_TWO, ARABIC_INDIC_ONE, "9" * 30]
    ]
    + [("/raw/appeals", "page", odd) for odd in ["-1", "x"]],  # were read as 0
)
async def test_a_query_number_that_is_not_ascii_digits_within_64_bits_is_400(
    running_host: RunningHost, path: str, name: str, odd: str
) -> None:
    answer = await running_host.client.get(f"{path}?{name}={odd}")
    assert answer.status_code == 400
    assert name in answer.text


@pytest.mark.parametrize("path", ["/api/appeals", "/raw/appeals"])
async def test_query_numbers_up_to_64_bits_are_read(running_host: RunningHost, path: str) -> None:
    await create(running_host)
    queries = ("", "?offset=0&integration_id=1", f"?offset={2**63 - 1}&limit=500")
    for query in (*queries, f"?page={2**63 - 1}", "?page=0") if path == "/raw/appeals" else queries:
        assert (await running_host.client.get(path + query)).status_code == 200, query


async def test_an_oauth_state_with_non_ascii_text_is_400(running_host: RunningHost) -> None:
    answer = await running_host.client.get("/oauth2/callback", params={"state": "abc.é"})
    assert answer.status_code == 400


async def test_json_nested_thousands_deep_is_400_everywhere_and_saves_nothing(
    running_host: RunningHost,
) -> None:
    path = await connected(running_host)  # active: the session report reaches its parser
    before = (await running_host.client.get("/api/integrations/1")).json()
    origin = {"origin": "https://shop.example.ru", "content-type": "application/json"}
    for method, url in [
        ("POST", "/api/sessions/1"),
        ("POST", "/api/visits"),
        ("PUT", "/api/integrations/1/settings"),
        ("POST", "/api/integrations"),
    ]:
        answer = await running_host.client.request(method, url, content=DEEP, headers=origin)
        assert answer.status_code == 400, (url, answer.text)
        assert "deeper" in answer.json()["message"]
    assert (await running_host.client.get("/api/integrations/1")).json() == before
    assert len((await running_host.client.get("/api/integrations")).json()["integrations"]) == 1
    assert path.startswith("/webhooks/1/")


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_json_numbers_must_be_finite(running_host: RunningHost, number: bytes) -> None:
    data = await create(running_host)
    answer = await running_host.client.put(
        f"/api/integrations/{data['id']}/settings",
        content=b'{"import_days": ' + number + b"}",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400 and "not valid JSON" in answer.text


@pytest.mark.parametrize(
    "field",
    [
        "auth[member_id]",
        "auth[application_token]",
        "auth[access_token]",
        "auth[refresh_token]",
        "auth[scope]",
        "auth[status]",
        "event_handler_id",
    ],
)
async def test_a_non_ascii_webhook_field_is_400_and_stores_nothing(
    running_host: RunningHost, field: str
) -> None:
    path = await connected(running_host)
    answer = await post(running_host, path, lead_event(**{field: "é51856fefc120afa4b628"}))
    assert answer.status_code == 400 and answer.json()["error"] == "malformed_event"
    assert "ASCII" in answer.json()["message"]
    assert await running_host.host.repo.list_inbox() == []


async def test_a_non_ascii_application_token_is_refused_by_the_settings_and_by_events(
    running_host: RunningHost,
) -> None:
    path = await connected(running_host)
    integration_id = int(path.split("/")[2])
    refused = await running_host.client.patch(
        f"/api/integrations/{integration_id}/settings",
        json={"application_token": "токен-приложения"},
    )
    assert refused.status_code == 422 and set(refused.json()["errors"]) == {"application_token"}
    # One stored before the settings refused such tokens still fails events cleanly.
    stored = await running_host.host.repo.get_integration(integration_id)
    assert stored is not None
    await running_host.host.repo.update_integration(
        integration_id,
        expected_version=stored.version,
        secrets={"application_token": SecretStr("токен-приложения")},
    )
    answer = await post(running_host, path, lead_event())
    assert answer.status_code == 403 and answer.json()["error"] == "wrong_application_token"
    assert await running_host.host.repo.list_inbox() == []


async def test_a_content_length_that_is_not_ascii_digits_is_not_read_as_one(
    running_host: RunningHost,
) -> None:
    """Only a server that checks the header (uvicorn's h11 does) keeps "²" from the host."""
    answer = await running_host.client.post(
        "/api/visits", content=b"{}", headers={b"content-length": b"\xb2"}
    )
    assert answer.status_code == 400
