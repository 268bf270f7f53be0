"""``bitrix.wire``: Bitrix24's official payload examples in, ``records`` out; forged input refused.

The examples live in ``tests/fixtures/bitrix24`` (verbatim copies, each with a ``.src.txt``
naming its source), so the tests never read the shared research folder.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from pydantic import ValidationError

from b24_openlines_plugin.bitrix import wire
from b24_openlines_plugin.bitrix.records import (
    Activity,
    ChatRef,
    ErrorBody,
    Event,
    HistoryUser,
    ListPage,
    Multifield,
)
from b24_openlines_plugin.bitrix.wire import WireError
from tests.examples import FIXTURES, form_body, load_json

# The secrets in the official examples: no error message may ever contain one.
TOKENS = (
    "s6p6eclrvim6da22ft9ch94ekreb52lv",  # access_token (events)
    "4s386p3q0tr8dy89xvmt96234v3dljg8",  # refresh_token (events)
    "51856fefc120afa4b628cc82d3935cce",  # application_token (app events)
    "jvh9y1ulvt2m6k5or90v9mg8nn32ozas",  # application_token (outgoing webhook)
    "ydtj8pho532wydb5ixk78ol7uqlb7sch",  # access_token (refresh answer)
    "3s6lr4kr3cv2od4v853gvrchb875bwxb",  # refresh_token (refresh answer)
    "s1morf609228iwyjjpvfv6wsvuja4p8u",  # access_token (authorization-code answer)
    "4f9k4jpmg13usmybzuqknt2v9fh0q6rl",  # refresh_token (authorization-code answer)
)
SECRET = "zq8secretvalue7x3k2tokenlike9w1"  # planted in the field that fails


def lead_pairs() -> list[tuple[str, str]]:
    return parse_qsl(form_body("ONCRMLEADADD.app.form.txt").decode(), strict_parsing=True)


def lead_form(**changes: str | None) -> bytes:
    """The official lead event with keys replaced (value) or dropped (None); new keys appended."""
    pairs = dict(lead_pairs())
    for key, value in changes.items():
        if value is None:
            pairs.pop(key, None)
        else:
            pairs[key] = value
    return urlencode(pairs).encode()


def form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()


def rejected(call: Any, *args: Any) -> str:
    """Call, expect WireError, and check its message leaks no token."""
    with pytest.raises(WireError) as caught:
        call(*args)
    message = str(caught.value)
    for token in (*TOKENS, SECRET):
        assert token not in message
    return message


def with_pair(key: str, value: str) -> bytes:
    return form([(k, v) for k, v in lead_pairs() if k != key] + [(key, value)])


def without(key: str) -> bytes:
    return form([(k, v) for k, v in lead_pairs() if k != key])


# --- events: the official examples ----------------------------------------------------------


def test_lead_event_as_bitrix24_posts_it() -> None:
    event = wire.parse_event(form_body("ONCRMLEADADD.app.form.txt"))

    assert event.name == "ONCRMLEADADD"
    assert event.handler_id == "707"
    assert event.entity_id == 1000983
    assert event.ts == 1742807175
    auth = event.auth
    assert auth.domain == "some-domain.bitrix24.com"
    assert auth.client_endpoint == "https://some-domain.bitrix24.com/rest/"
    assert auth.server_endpoint == "https://oauth.bitrix.info/rest/"
    assert auth.member_id == "a223c6b3710f85df22e9377d6c4f7553"
    assert auth.application_token == "51856fefc120afa4b628cc82d3935cce"
    assert auth.access_token == "s6p6eclrvim6da22ft9ch94ekreb52lv"
    assert auth.refresh_token == "4s386p3q0tr8dy89xvmt96234v3dljg8"
    assert (auth.expires_in, auth.scope, auth.status, auth.user_id) == (3600, "crm", "L", None)


def test_deal_event_of_an_app_has_no_refresh_token() -> None:
    event = wire.parse_event(form_body("ONCRMDEALADD.app.form.txt"))

    assert (event.name, event.handler_id, event.entity_id, event.ts) == (
        "ONCRMDEALADD",
        "185",
        7405,
        1766047124,
    )
    assert event.auth.member_id == "d897063e1ce7c5eb9f04b9751eef5915"
    assert event.auth.access_token == "s6p6eclrvim6da22ft9ch94ekreb52lv"
    assert event.auth.refresh_token is None


def test_outgoing_webhook_event_carries_no_oauth_tokens() -> None:
    event = wire.parse_event(form_body("ONCRMDEALADD.outgoing_webhook.form.txt"))

    assert (event.name, event.handler_id, event.entity_id) == ("ONCRMDEALADD", "975", 7405)
    assert event.auth.application_token == "jvh9y1ulvt2m6k5or90v9mg8nn32ozas"
    auth = event.auth
    assert (auth.access_token, auth.refresh_token, auth.expires_in, auth.scope) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("form_file", "json_file"),
    [
        ("ONCRMLEADADD.app.form.txt", "ONCRMLEADADD.json"),
        ("ONCRMDEALADD.app.form.txt", "ONCRMDEALADD.app.json"),
        ("ONCRMDEALADD.outgoing_webhook.form.txt", "ONCRMDEALADD.outgoing_webhook.json"),
    ],
)
def test_json_view_of_an_event_reads_the_same_as_the_form(form_file: str, json_file: str) -> None:
    from_json = wire.parse_event((FIXTURES / json_file).read_bytes())

    assert from_json == wire.parse_event(form_body(form_file))


def test_deal_event_example_as_json() -> None:
    event = wire.parse_event((FIXTURES / "ONCRMDEALADD.json").read_bytes())

    assert (event.name, event.handler_id, event.entity_id, event.ts) == (
        "ONCRMDEALADD",
        "185",
        6641,
        1735374081,
    )


def test_activity_event_name_is_upper_cased_and_handler_id_optional() -> None:
    event = wire.parse_event((FIXTURES / "onCrmActivityAdd.json").read_bytes())

    assert event.name == "ONCRMACTIVITYADD"
    assert event.handler_id is None
    assert (event.entity_id, event.ts) == (999, 1466439714)


def test_json_event_may_carry_numbers_instead_of_strings() -> None:
    payload = load_json("ONCRMLEADADD.json")
    payload["data"]["FIELDS"]["ID"] = 1000983
    payload["ts"] = 1742807175
    payload["event_handler_id"] = 707

    event = wire.parse_event(json.dumps(payload).encode())

    assert (event.entity_id, event.ts, event.handler_id) == (1000983, 1742807175, "707")


def test_event_grows_new_keys_without_breaking() -> None:
    body = lead_form(**{"data[FIELDS][TITLE]": "x", "auth[client_id]": "app.1", "extra": ""})

    assert wire.parse_event(body).entity_id == 1000983


def test_older_event_without_handler_id_and_with_blank_optional_auth() -> None:
    dropped = ("event_handler_id", "auth[status]")
    body = form(
        [(k, v) for k, v in lead_pairs() if k not in dropped]
        + [("auth[user_id]", ""), ("auth[status]", "")]
    )

    event = wire.parse_event(body)

    assert event.handler_id is None
    assert (event.auth.user_id, event.auth.status) == (None, None)


def test_surrounding_whitespace_is_tolerated() -> None:
    body = b"\r\n" + form_body("ONCRMLEADADD.app.form.txt") + b"\n"

    assert wire.parse_event(body).entity_id == 1000983


# --- events: malformed and forged -----------------------------------------------------------

REQUIRED_EVENT_KEYS = [
    "event",
    "data[FIELDS][ID]",
    "ts",
    "auth[domain]",
    "auth[client_endpoint]",
    "auth[server_endpoint]",
    "auth[member_id]",
    "auth[application_token]",
]


@pytest.mark.parametrize("key", REQUIRED_EVENT_KEYS)
def test_event_missing_a_required_key_is_refused(key: str) -> None:
    message = rejected(wire.parse_event, without(key))

    assert "Missing data" in message


@pytest.mark.parametrize("key", REQUIRED_EVENT_KEYS)
def test_event_with_a_blank_required_value_is_refused(key: str) -> None:
    rejected(wire.parse_event, with_pair(key, ""))


def test_event_without_data_fields_is_refused() -> None:
    body = form([(k, v) for k, v in lead_pairs() if not k.startswith("data")])

    assert "data" in rejected(wire.parse_event, body)


@pytest.mark.parametrize(
    "value",
    ["12a", "1.5", "1e3", " 7", "7 ", "١٢٣", "0x1F", "1_000", "-5", "0", SECRET, "9" * 19],
)
def test_event_entity_id_must_be_a_positive_integer(value: str) -> None:
    message = rejected(wire.parse_event, with_pair("data[FIELDS][ID]", value))

    assert "data.FIELDS.ID" in message


@pytest.mark.parametrize("value", ["soon", "1742807175.5", "-1", SECRET])
def test_event_ts_must_be_an_integer(value: str) -> None:
    assert "ts" in rejected(wire.parse_event, with_pair("ts", value))


@pytest.mark.parametrize("value", [1000983.0, True, None, [1], {"ID": 1}])
def test_json_event_id_of_the_wrong_type_is_refused(value: object) -> None:
    payload = load_json("ONCRMLEADADD.json")
    payload["data"]["FIELDS"]["ID"] = value

    rejected(wire.parse_event, json.dumps(payload).encode())


@pytest.mark.parametrize(
    "value", [f"javascript:{SECRET}", SECRET, "ftp://some-domain.bitrix24.com/rest/"]
)
def test_event_endpoints_must_be_http_urls(value: str) -> None:
    assert "client_endpoint" in rejected(
        wire.parse_event, with_pair("auth[client_endpoint]", value)
    )


@pytest.mark.parametrize("value", ["ON CRM", "ON-CRM", "1EVENT", f"{SECRET}!", "A" * 101])
def test_event_name_must_be_an_identifier(value: str) -> None:
    assert "event" in rejected(wire.parse_event, with_pair("event", value))


def test_event_value_of_2000_chars_passes_and_2001_is_refused() -> None:
    assert wire.parse_event(with_pair("auth[scope]", "c" * 2000)).auth.scope == "c" * 2000

    message = rejected(wire.parse_event, with_pair("auth[scope]", SECRET + "c" * 2000))

    assert "2000" in message


def test_event_with_too_many_fields_is_refused() -> None:
    padding = [(f"data[FIELDS][X{i}]", "1") for i in range(wire.MAX_EVENT_FIELDS)]

    assert "fields" in rejected(wire.parse_event, form(lead_pairs() + padding))


def test_oversized_event_body_is_refused() -> None:
    body = with_pair("auth[scope]", "c" * 2000) + b"&x=" + b"y" * wire.MAX_EVENT_BYTES

    assert "larger" in rejected(wire.parse_event, body)


def test_bracket_depth_of_five_is_fine_and_six_is_refused() -> None:
    assert wire.parse_event(with_pair("data[a][b][c][d]", "1")).entity_id == 1000983

    assert "deeper" in rejected(wire.parse_event, with_pair("data[a][b][c][d][e]", "1"))


@pytest.mark.parametrize(
    "extra",
    [
        [("auth", SECRET)],  # a value where auth[...] is a group
        [("auth[domain][x]", SECRET)],  # a group where auth[domain] is a value
        [("data[FIELDS]", "1")],
    ],
)
def test_key_that_is_both_a_value_and_a_group_is_refused(extra: list[tuple[str, str]]) -> None:
    for body in (form(lead_pairs() + extra), form(extra + lead_pairs())):
        assert "both a value and a group" in rejected(wire.parse_event, body)


@pytest.mark.parametrize(
    "duplicate",
    [
        b"&event=ONCRMDEALADD",
        b"&auth%5Bapplication_token%5D=" + SECRET.encode(),
        b"&auth[application_token]=" + SECRET.encode(),  # same key, written unescaped
    ],
)
def test_repeated_key_is_refused(duplicate: bytes) -> None:
    body = form_body("ONCRMLEADADD.app.form.txt") + duplicate

    assert "repeats" in rejected(wire.parse_event, body)


@pytest.mark.parametrize(
    "key", ["auth[domain", "auth]domain[", "[auth]", "auth[]", "a[b]c", "a[[b]]"]
)
def test_malformed_bracket_key_is_refused(key: str) -> None:
    assert "malformed" in rejected(wire.parse_event, with_pair(key, SECRET))


@pytest.mark.parametrize(
    "body",
    [
        b"event=ONCRMLEADADD&\xff\xfe",
        form_body("ONCRMLEADADD.app.form.txt") + b"&auth%5Bscope%5D2=%FF%FE",
    ],
)
def test_body_that_is_not_utf8_is_refused(body: bytes) -> None:
    assert "UTF-8" in rejected(wire.parse_event, body)


@pytest.mark.parametrize("body", [b"", b"   ", b"\r\n\t"])
def test_empty_body_is_refused(body: bytes) -> None:
    assert "empty" in rejected(wire.parse_event, body)


@pytest.mark.parametrize(
    "body",
    [
        form_body("ONCRMLEADADD.app.form.txt") + b"&junk",  # a field without "="
        b"event=ONCRMLEADADD&&ts=1",
        b"=1&event=X",
    ],
)
def test_body_that_is_not_a_form_is_refused(body: bytes) -> None:
    rejected(wire.parse_event, body)


@pytest.mark.parametrize("body", [b"[1, 2]", b'["event"]', b"[]"])
def test_json_that_is_not_an_object_is_refused(body: bytes) -> None:
    assert "not an object" in rejected(wire.parse_event, body)


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"event": }', b"{" * 5000, b"[" * 50_000, b'{"event": NaNx}'],
)
def test_broken_json_is_refused(body: bytes) -> None:
    rejected(wire.parse_event, body)


def test_json_with_a_repeated_key_is_refused() -> None:
    text = (FIXTURES / "ONCRMLEADADD.json").read_text()
    text = text.replace('"event":', f'"event": "X", "auth": {{"member_id": "{SECRET}"}}, "event":')

    assert "repeats" in rejected(wire.parse_event, text.encode())


def test_json_nested_too_deep_or_too_long_is_refused() -> None:
    deep = load_json("ONCRMLEADADD.json")
    deep["data"]["FIELDS"]["X"] = {"a": {"b": {"c": SECRET}}}
    long = load_json("ONCRMLEADADD.json")
    long["auth"]["application_token"] = SECRET * 100

    assert "deeper" in rejected(wire.parse_event, json.dumps(deep).encode())
    assert "longer" in rejected(wire.parse_event, json.dumps(long).encode())


def test_json_missing_auth_is_refused() -> None:
    payload = load_json("ONCRMLEADADD.json")
    del payload["auth"]

    assert "auth" in rejected(wire.parse_event, json.dumps(payload).encode())


def test_parse_event_refuses_text_instead_of_bytes() -> None:
    rejected(wire.parse_event, form_body("ONCRMLEADADD.app.form.txt").decode())


@pytest.mark.parametrize("key", ["auth[application_token]", "auth[access_token]"])
def test_token_in_a_failing_event_never_reaches_the_message(key: str) -> None:
    # The event fails on its ID; the message names that field and nothing else.
    body = form(
        [(k, SECRET if k == key else v) for k, v in lead_pairs() if k != "data[FIELDS][ID]"]
        + [("data[FIELDS][ID]", SECRET)]
    )

    message = rejected(wire.parse_event, body)

    assert message.startswith("event: data.FIELDS.ID")


# --- OAuth ----------------------------------------------------------------------------------


def test_token_grant_from_an_authorization_code() -> None:
    grant = wire.parse_token_grant(load_json("oauth.token.authorization_code.response.json"))

    assert grant.access_token == "s1morf609228iwyjjpvfv6wsvuja4p8u"
    assert grant.refresh_token == "4f9k4jpmg13usmybzuqknt2v9fh0q6rl"
    assert grant.expires_in == 3600
    assert (grant.expires, grant.user_id) == (None, None)
    assert grant.member_id == "a223c6b3710f85df22e9377d6c4f7553"
    assert grant.client_endpoint == "https://portal.bitrix24.com/rest/"
    assert grant.server_endpoint == "https://oauth.bitrix.info/rest/"
    assert grant.domain == "oauth.bitrix.info"
    assert grant.scope == ["crm", "entity", "im", "task"]
    assert grant.status == "F"


def test_token_grant_from_a_refresh() -> None:
    grant = wire.parse_token_grant(load_json("oauth.token.refresh_token.response.json"))

    assert grant.access_token == "ydtj8pho532wydb5ixk78ol7uqlb7sch"
    assert grant.refresh_token == "3s6lr4kr3cv2od4v853gvrchb875bwxb"
    assert (grant.expires, grant.expires_in, grant.user_id) == (1780319382, 3600, 67)
    assert grant.scope == ["crm", "entity", "im", "task"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (" crm, imopenlines ,", ["crm", "imopenlines"]),
        (["crm", "im"], ["crm", "im"]),
        ("", []),
    ],
)
def test_token_grant_scope_forms(scope: object, expected: list[str]) -> None:
    payload = {**load_json("oauth.token.refresh_token.response.json"), "scope": scope}

    assert wire.parse_token_grant(payload).scope == expected


@pytest.mark.parametrize(
    "key", ["access_token", "refresh_token", "expires_in", "member_id", "client_endpoint", "scope"]
)
def test_token_grant_missing_a_key_is_refused(key: str) -> None:
    payload = load_json("oauth.token.refresh_token.response.json")
    del payload[key]

    assert key in rejected(wire.parse_token_grant, payload)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("expires_in", "an hour"),
        ("expires_in", 0),
        ("user_id", SECRET),
        ("scope", 42),
        ("access_token", 3.5),
        ("client_endpoint", SECRET),
    ],
)
def test_token_grant_with_a_wrong_value_is_refused(key: str, value: object) -> None:
    payload = {**load_json("oauth.token.refresh_token.response.json"), key: value}

    assert key in rejected(wire.parse_token_grant, payload)


def test_token_grant_that_is_an_error_names_the_error_only() -> None:
    message = rejected(wire.parse_token_grant, load_json("error.invalid_grant.json"))

    assert "invalid_grant" in message
    odd = {"error": f"{SECRET} {SECRET}", "refresh_token": SECRET}
    assert "unrecognised" in rejected(wire.parse_token_grant, odd)


@pytest.mark.parametrize("payload", [None, [], "token", 5])
def test_token_grant_must_be_an_object(payload: Any) -> None:
    rejected(wire.parse_token_grant, payload)


# --- errors ---------------------------------------------------------------------------------

ERROR_EXAMPLES = {
    "error.NO_AUTH_FOUND.json": ("NO_AUTH_FOUND", "Wrong authorization data"),
    "error.OPERATION_TIME_LIMIT.json": (
        "OPERATION_TIME_LIMIT",
        "Method is blocked due to operation time limit.",
    ),
    "error.QUERY_LIMIT_EXCEEDED.json": ("QUERY_LIMIT_EXCEEDED", "Too many requests"),
    "error.expired_token.json": ("expired_token", "The access token provided has expired."),
    "error.invalid_grant.json": ("invalid_grant", ""),
    "error.invalid_request.oauth.json": ("invalid_request", 'No "refresh_token" parameter found'),
    "error.invalid_token.json": ("invalid_token", "Unable to get application by token"),
    "oauth.error.PAYMENT_REQUIRED.json": ("PAYMENT_REQUIRED", "Payment required"),
    "imopenlines.crm.chat.get.error.json": (
        "ERROR_ARGUMENT",
        "Argument 'CRM_ENTITY' is null or empty",
    ),
    "imopenlines.session.history.get.error.json": (
        "MISSING_REQUIRED_PARAM",
        "Session ID or Chat ID must be provided",
    ),
}


@pytest.mark.parametrize(("name", "expected"), ERROR_EXAMPLES.items())
def test_error_examples(name: str, expected: tuple[str, str]) -> None:
    code, description = expected

    assert wire.parse_error(load_json(name)) == ErrorBody(error=code, description=description)


def test_error_with_an_empty_code_is_still_an_error() -> None:
    # crm.activity.list answers 400 {"error": "", "error_description": "Parameter 'filter' ..."}.
    body = {"error": "", "error_description": "Parameter 'filter' must be array."}

    assert wire.parse_error(body) == ErrorBody(error="", description=body["error_description"])


@pytest.mark.parametrize(
    "name",
    [
        "crm.lead.get.json",
        "oauth.token.refresh_token.response.json",
        "imopenlines.crm.chat.get.json",
    ],
)
def test_successful_answers_are_not_errors(name: str) -> None:
    assert wire.parse_error(load_json(name)) is None


@pytest.mark.parametrize("payload", [None, [], "error", 401, {"error": None}, {"result": []}])
def test_things_that_are_not_error_bodies(payload: object) -> None:
    assert wire.parse_error(payload) is None


@pytest.mark.parametrize(
    "payload", [{"error": {"code": SECRET}}, {"error": "x", "error_description": [SECRET]}]
)
def test_error_body_of_the_wrong_shape_is_refused(payload: object) -> None:
    rejected(wire.parse_error, payload)


def test_null_error_description_reads_as_empty() -> None:
    assert wire.parse_error({"error": "X", "error_description": None}) == ErrorBody(error="X")


# --- CRM records ----------------------------------------------------------------------------

PLUS_ONE = timezone(timedelta(hours=1))
PLUS_TWO = timezone(timedelta(hours=2))


def test_lead_from_crm_lead_get() -> None:
    lead = wire.parse_crm_entity(load_json("crm.lead.get.json")["result"])

    assert lead.id == 123
    assert lead.title == "Lead #1591"
    assert (lead.name, lead.second_name, lead.last_name) == (None, None, None)  # "" and null
    assert lead.source_id == "1"
    assert lead.date_create == datetime(2024, 5, 23, 18, 18, 25, tzinfo=PLUS_TWO)
    assert lead.date_create.utcoffset() == timedelta(hours=2)
    assert lead.contact_id is None
    assert lead.assigned_by_id == 1
    assert lead.phones == [
        Multifield(id=11658, type_id="PHONE", value_type="OTHER", value="+15454777777")
    ]
    assert lead.emails == []
    assert lead.ims == [
        Multifield(id=11660, type_id="IM", value_type="OPENLINE", value="imol|livechat|1|67|21")
    ]
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == (None, None, None)
    assert (lead.utm_content, lead.utm_term) == (None, None)


def test_deal_from_crm_deal_get() -> None:
    deal = wire.parse_crm_entity(load_json("crm.deal.get.json")["result"])

    assert (deal.id, deal.title, deal.source_id) == (410, "New Deal #1", "CALLBACK")
    assert deal.contact_id == 84
    assert deal.date_create == datetime(2024, 8, 30, 14, 29, tzinfo=PLUS_TWO)
    assert (deal.phones, deal.emails, deal.ims) == ([], [], [])  # deals have no multifields
    assert (deal.utm_source, deal.utm_medium, deal.utm_campaign) == ("google", "CPC", None)
    assert deal.name is None


def test_contact_from_crm_contact_get() -> None:
    contact = wire.parse_crm_entity(load_json("crm.contact.get.json")["result"])

    assert contact.id == 43
    assert (contact.name, contact.second_name, contact.last_name) == ("John", "Doe", "Smith")
    assert contact.title is None
    assert contact.assigned_by_id == 6
    assert contact.date_create == datetime(2024, 8, 15, 10, 38, 21, tzinfo=PLUS_TWO)
    assert [(p.value_type, p.value) for p in contact.phones] == [
        ("WORK", "+13333333555"),
        ("HOME", "+15599888666"),
    ]
    assert [(e.id, e.value) for e in contact.emails] == [
        (158, "johnsmith@example.mailing"),
        (159, "johnsmith@example.work"),
    ]
    assert (contact.utm_campaign, contact.utm_content, contact.utm_term) == (
        "summer_sale",
        "header_banner",
        "discount",
    )


def deal_with(**changes: object) -> dict[str, Any]:
    record: dict[str, Any] = load_json("crm.deal.get.json")["result"]
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


@pytest.mark.parametrize("value", ["", "0", None, 0, ...])
def test_unset_contact_id_is_none(value: object) -> None:
    assert wire.parse_crm_entity(deal_with(CONTACT_ID=value)).contact_id is None


@pytest.mark.parametrize("value", ["", None])
def test_empty_utm_is_none(value: object) -> None:
    assert wire.parse_crm_entity(deal_with(UTM_SOURCE=value)).utm_source is None


def test_null_multifield_list_is_empty() -> None:
    assert wire.parse_crm_entity(deal_with(PHONE=None, EMAIL=[])).phones == []


@pytest.mark.parametrize(
    "value", ["2024-08-30T14:29:00", "2024-08-30", "yesterday", "", None, 1725020940, ...]
)
def test_date_create_must_be_an_aware_date_time(value: object) -> None:
    assert "DATE_CREATE" in rejected(wire.parse_crm_entity, deal_with(DATE_CREATE=value))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ID", "abc"),
        ("ID", "0"),
        ("ID", ...),
        ("CONTACT_ID", "-3"),
        ("CONTACT_ID", "x"),
        ("TITLE", ["x"]),
        ("PHONE", "+1555"),
        ("PHONE", [{"VALUE": "+1555"}]),
    ],
)
def test_crm_record_with_a_wrong_value_is_refused(key: str, value: object) -> None:
    assert key in rejected(wire.parse_crm_entity, deal_with(**{key: value}))


def test_crm_record_must_be_an_object() -> None:
    rejected(wire.parse_crm_entity, load_json("crm.lead.list.json")["result"])


# --- Open Lines -----------------------------------------------------------------------------


def test_crm_chats() -> None:
    chats = wire.parse_crm_chats(load_json("imopenlines.crm.chat.get.json")["result"])

    assert chats == [ChatRef(chat_id=1763, connector_id="livechat", connector_title="Live Chat")]


@pytest.mark.parametrize("payload", [[], {}])
def test_no_crm_chats(payload: object) -> None:
    assert wire.parse_crm_chats(payload) == []


@pytest.mark.parametrize(
    "payload",
    [None, "1763", [{"CONNECTOR_ID": "livechat"}], [{"CHAT_ID": "x", "CONNECTOR_ID": "a"}], [5]],
)
def test_crm_chats_of_the_wrong_shape_are_refused(payload: object) -> None:
    rejected(wire.parse_crm_chats, payload)


def test_dialog() -> None:
    dialog = wire.parse_dialog(load_json("imopenlines.dialog.get.json")["result"])

    assert dialog.chat_id == 1777
    assert dialog.user_code == "livechat|22|1775|599"
    assert dialog.session_id == 343  # sixth field of "Y|LEAD|1209|N|N|343|1773682918|0|0|0"
    assert (dialog.crm_entity_type, dialog.crm_entity_id) == ("LEAD", 1209)
    assert dialog.date_create == datetime(2026, 3, 13, 16, 50, 15, tzinfo=PLUS_ONE)


def dialog_with(**changes: object) -> dict[str, Any]:
    result: dict[str, Any] = load_json("imopenlines.dialog.get.json")["result"]
    return {**result, **changes}


@pytest.mark.parametrize("entity_data_1", ["N|NONE|0|N|N|0|1773682918|0|0|0", "", None])
def test_dialog_without_crm_or_session(entity_data_1: str | None) -> None:
    dialog = wire.parse_dialog(dialog_with(entity_data_1=entity_data_1))

    assert (dialog.session_id, dialog.crm_entity_type, dialog.crm_entity_id) == (None, None, None)


def test_dialog_without_entity_data_or_date() -> None:
    result = dialog_with(date_create=None)
    del result["entity_data_1"]

    dialog = wire.parse_dialog(result)

    assert (dialog.session_id, dialog.date_create) == (None, None)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("entity_data_1", "Y|LEAD|1209|N|N|abc|0"),
        ("entity_data_1", "Y|LEAD|12x|N|N|343|0"),
        ("entity_data_1", 343),
        ("entity_type", "CHAT"),
        ("entity_id", ""),
        ("id", "chat1777"),
        ("date_create", "2026-03-13 16:50:15"),
    ],
)
def test_dialog_with_a_wrong_value_is_refused(key: str, value: object) -> None:
    assert key in rejected(wire.parse_dialog, dialog_with(**{key: value}))


def test_session_history() -> None:
    result = load_json("imopenlines.session.history.get.json")["result"]

    history = wire.parse_session_history(result)

    assert (history.chat_id, history.session_id) == (1763, 321)
    assert history.user_code == "livechat|22|1761|587"
    assert [m.id for m in history.messages] == [85833, 85851]  # oldest first
    system, operator = history.messages
    assert (system.author_id, system.text) == (0, "[b]A new lead has been created[/b]")
    assert system.date == datetime(2026, 3, 11, 13, 9, 25, tzinfo=PLUS_ONE)
    assert (operator.author_id, operator.text) == (103, "Open the task card and click Observers")
    assert history.users == {
        103: HistoryUser(id=103, name="Samantha Johnson", is_connector=False, is_bot=False)
    }


def history_with(**changes: object) -> dict[str, Any]:
    result: dict[str, Any] = load_json("imopenlines.session.history.get.json")["result"]
    return {**result, **changes}


def test_empty_session_history_comes_as_php_empty_arrays() -> None:
    history = wire.parse_session_history(history_with(message=[], users=[], chat=[]))

    assert (history.messages, history.users, history.user_code) == ([], {}, None)


def test_session_history_client_and_bot_users() -> None:
    users = {
        "587": {"id": "587", "name": "Guest", "connector": True, "bot": False},
        "9": {"id": 9, "name": None, "connector": "N", "bot": "Y"},
    }

    history = wire.parse_session_history(history_with(users=users))

    assert history.users[587].is_connector and not history.users[587].is_bot
    assert history.users[9] == HistoryUser(id=9, name="", is_connector=False, is_bot=True)


def test_session_history_message_without_text() -> None:
    message = {"id": "1", "senderid": "587", "date": "2026-03-11T13:12:46+01:00", "text": None}

    history = wire.parse_session_history(history_with(message={"1": message}))

    assert history.messages[0].text == ""


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("chatId", "chat1763"),
        ("sessionId", None),
        ("message", "85851"),
        ("message", {"1": {"id": "1", "senderid": "2", "date": "2026-03-11T13:12:46"}}),
        ("message", {"1": {"id": "1", "senderid": "-2", "date": "2026-03-11T13:12:46+01:00"}}),
        ("users", {"103": {"id": "103", "name": "A", "connector": "maybe"}}),
    ],
)
def test_session_history_with_a_wrong_value_is_refused(key: str, value: object) -> None:
    assert key in rejected(wire.parse_session_history, history_with(**{key: value}))


# --- activities and list pages --------------------------------------------------------------

OPEN_LINES_ROW = {  # shape of activity.php's IMOPENLINES_SESSION activity (API-FACTS §4.9)
    "ID": "5021",
    "OWNER_ID": "1209",
    "OWNER_TYPE_ID": "1",
    "TYPE_ID": "6",
    "PROVIDER_ID": "IMOPENLINES_SESSION",
    "PROVIDER_TYPE_ID": "22",
    "ASSOCIATED_ENTITY_ID": "343",
    "RESULT_SOURCE_ID": "livechat",
    "PROVIDER_PARAMS": {"USER_CODE": "livechat|22|1775|599"},
    "COMPLETED": "N",
    "CREATED": "2026-03-13T16:50:15+01:00",
    "LAST_UPDATED": "2026-03-13T16:55:00+01:00",
    "END_TIME": "",
}


def test_activity_from_the_official_list_example() -> None:
    (activity,) = wire.parse_activities(load_json("crm.activity.list.json")["result"])

    assert activity == Activity(
        id=20,
        provider_id="VOXIMPLANT_CALL",
        owner_type_id=3,
        owner_id=15,
        session_id=None,  # ASSOCIATED_ENTITY_ID "0"; and a call is not a session anyway
        connector_id=None,
        user_code=None,  # PROVIDER_PARAMS: [] (PHP's empty array)
        completed=True,
        created=datetime(2020, 9, 27, 13, 26, 55, tzinfo=timezone(timedelta(hours=3))),
        last_updated=datetime(2021, 3, 21, 20, 28, 24, tzinfo=timezone(timedelta(hours=3))),
        end_time=datetime(2020, 9, 27, 19, 25, tzinfo=timezone(timedelta(hours=3))),
    )


def test_open_lines_activity() -> None:
    (activity,) = wire.parse_activities([OPEN_LINES_ROW])

    assert (activity.id, activity.owner_type_id, activity.owner_id) == (5021, 1, 1209)
    assert activity.session_id == 343
    assert activity.connector_id == "livechat"
    assert activity.user_code == "livechat|22|1775|599"
    assert activity.completed is False
    assert activity.end_time is None
    closed = wire.parse_activities([{**OPEN_LINES_ROW, "COMPLETED": "Y"}])
    assert closed[0].completed is True


def test_associated_entity_of_another_provider_is_not_a_session() -> None:
    row = {**OPEN_LINES_ROW, "PROVIDER_ID": "VOXIMPLANT_CALL", "PROVIDER_PARAMS": {"X": 1}}

    (activity,) = wire.parse_activities([row])

    assert (activity.session_id, activity.user_code) == (None, None)


def test_minimal_activity_row() -> None:
    (activity,) = wire.parse_activities({"0": {"ID": 7, "COMPLETED": "N"}})

    assert activity == Activity(id=7, completed=False)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("COMPLETED", "maybe"),
        ("COMPLETED", ...),
        ("ID", "5021a"),
        ("PROVIDER_PARAMS", {"USER_CODE": 5}),
        ("CREATED", "2026-03-13T16:50:15"),
        ("ASSOCIATED_ENTITY_ID", "-1"),
    ],
)
def test_activity_with_a_wrong_value_is_refused(key: str, value: object) -> None:
    row = {**OPEN_LINES_ROW, key: value}
    if value is ...:
        del row[key]

    assert key in rejected(wire.parse_activities, [row])


@pytest.mark.parametrize("payload", [None, "rows", 5, [None], [[1]]])
def test_activity_list_of_the_wrong_shape_is_refused(payload: object) -> None:
    rejected(wire.parse_activities, payload)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("crm.lead.list.json", ListPage(next=50, total=654)),
        ("crm.activity.list.json", ListPage(next=50, total=123456)),
        ("crm.lead.get.json", ListPage()),
    ],
)
def test_list_page(name: str, expected: ListPage) -> None:
    assert wire.parse_list_page(load_json(name)) == expected


def test_last_list_page_has_no_next() -> None:
    assert wire.parse_list_page({"result": [], "total": "3"}) == ListPage(total=3)


@pytest.mark.parametrize("payload", [{"next": -50}, {"total": "many"}, {"next": 1.5}, [50]])
def test_list_page_with_a_wrong_value_is_refused(payload: object) -> None:
    rejected(wire.parse_list_page, payload)


# --- form_encode ----------------------------------------------------------------------------


def test_form_encode_writes_php_brackets() -> None:
    params = {"filter": {">ID": 5, "PROVIDER_ID": "X"}, "select": ["ID", "X"]}

    assert wire.form_encode(params) == (
        "filter[>ID]=5&filter[PROVIDER_ID]=X&select[0]=ID&select[1]=X"
    )


def test_form_encode_keeps_batch_references_readable() -> None:
    params = {"ID": "$result[get_user][UF_DEPARTMENT][0]"}

    assert wire.form_encode(params) == "ID=$result[get_user][UF_DEPARTMENT][0]"


def test_form_encode_escapes_what_php_would_misread() -> None:
    params = {"filter": {"!=TITLE": "a b&c=d+e%f#g", ">=CREATED": "2026-03-13T16:50:15+01:00"}}

    encoded = wire.form_encode(params)

    assert encoded == (
        "filter[!%3DTITLE]=a%20b%26c%3Dd%2Be%25f%23g&filter[>%3DCREATED]=2026-03-13T16:50:15%2B01:00"
    )
    assert parse_qsl(encoded, strict_parsing=True) == [
        ("filter[!=TITLE]", "a b&c=d+e%f#g"),
        ("filter[>=CREATED]", "2026-03-13T16:50:15+01:00"),
    ]


def test_form_encode_writes_values_as_given() -> None:
    params = {"ACTIVE_ONLY": "N", "flag": True, "off": False, "n": 0, "x": 1.5, "ru": "Привет"}

    assert wire.form_encode(params) == (
        "ACTIVE_ONLY=N&flag=1&off=0&n=0&x=1.5&ru=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82"
    )


def test_form_encode_nests_deeply_and_takes_tuples_and_int_keys() -> None:
    params = {"order": {"ID": "ASC"}, "filter": {"@ID": (1, 2)}, "cmd": {3: {"a": ["b"]}}}

    assert wire.form_encode(params) == (
        "order[ID]=ASC&filter[@ID][0]=1&filter[@ID][1]=2&cmd[3][a][0]=b"
    )


def test_form_encode_of_nothing_is_empty() -> None:
    assert wire.form_encode({}) == ""


@pytest.mark.parametrize(
    "params",
    [
        {"filter": {"ID": None}},
        {"filter": {"@ID": []}},
        {"filter": {}},
        {"x": float("nan")},
        {"x": b"bytes"},
        {"x": object()},
        {"a[b]": 1},
        {"": 1},
        {"filter": {"": 1}},
        {"filter": {True: 1}},
        {"filter": {("a",): 1}},
    ],
)
def test_form_encode_refuses_what_php_would_drop_or_misread(params: dict[str, object]) -> None:
    with pytest.raises(WireError):
        wire.form_encode(params)


def test_form_encode_round_trips_through_parse_event() -> None:
    event = load_json("ONCRMLEADADD.json")

    assert wire.parse_event(wire.form_encode(event).encode()) == wire.parse_event(
        form_body("ONCRMLEADADD.app.form.txt")
    )


# --- records: the wire keys are read from payloads only ------------------------------------


def test_records_built_in_python_take_field_names_and_refuse_unknown_ones() -> None:
    activity = Activity(id=7, completed=False, user_code="livechat|1|2|3", session_id=None)

    assert activity == Activity(id=7, completed=False, user_code="livechat|1|2|3")
    with pytest.raises(ValidationError):
        Activity(id=7, completed=False, nonsense=1)  # type: ignore[call-arg]
    assert ListPage(next=50) == wire.parse_list_page({"next": "50", "more": 1})


def test_payloads_are_read_by_wire_keys_not_by_field_names() -> None:
    lead: dict[str, Any] = load_json("crm.lead.get.json")["result"]
    by_field_name = {**{k: v for k, v in lead.items() if k != "ID"}, "id": 123}
    dialog = dialog_with(chat_id=1777)
    del dialog["id"]

    assert "ID" in rejected(wire.parse_crm_entity, by_field_name)
    assert "id: Missing data" in rejected(wire.parse_dialog, dialog)


def test_form_body_reads_like_parse_qsl() -> None:
    pairs = [(k, v) for k, v in lead_pairs() if k != "auth[scope]"]
    body = form(pairs) + b"&auth%5Bscope%5D=crm+im%2Cimopenlines&auth[client_id]=a%2Bb+c"
    event = wire.parse_event(body)

    assert event.auth.scope == "crm im,imopenlines"
    expected = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
    assert wire._form_fields(body.decode()) == expected


def test_cached_keys_and_values_do_not_leak_between_events() -> None:
    first = wire.parse_event(with_pair("auth[domain]", "first.bitrix24.ru"))
    second = wire.parse_event(with_pair("auth[domain]", "second.bitrix24.ru"))

    assert (first.auth.domain, second.auth.domain) == ("first.bitrix24.ru", "second.bitrix24.ru")
    assert wire.parse_event(with_pair("auth[domain]", "first.bitrix24.ru")) == first


@pytest.mark.parametrize(
    "value",
    [
        "https://портал.рф/rest/",
        "http://127.0.0.1:8100/rest/",
        "http://localhost/rest/",
        "https://user:pw@some-domain.bitrix24.com:443/rest/",
        "https://[::1]/rest/",
    ],
)
def test_event_endpoints_may_be_unicode_local_or_with_a_port(value: str) -> None:
    assert wire.parse_event(with_pair("auth[client_endpoint]", value)).auth.client_endpoint == value


@pytest.mark.parametrize(
    "value", ["https://", "https:///rest/", "https://a b.ru/", "//some-domain.bitrix24.com/rest/"]
)
def test_event_endpoints_that_are_not_urls_are_refused(value: str) -> None:
    assert "client_endpoint: Not a valid URL." in rejected(
        wire.parse_event, with_pair("auth[client_endpoint]", value)
    )


# --- properties -----------------------------------------------------------------------------

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a development extra
    pass
else:
    quick = settings(max_examples=300, deadline=None, database=None)

    def parses_or_refuses(body: bytes) -> None:
        try:
            result = wire.parse_event(body)
        except WireError as error:
            assert str(error)
        else:
            assert isinstance(result, Event)

    @quick
    @given(st.binary(max_size=2048))
    def test_any_bytes_give_an_event_or_a_wire_error(body: bytes) -> None:
        parses_or_refuses(body)

    KEY_PARTS = st.sampled_from(
        ["event", "ts", "data", "FIELDS", "ID", "auth", "domain", "member_id", "[", "]", "", "x"]
    )
    VALUES = st.one_of(
        st.sampled_from(["1", "0", "-1", "ONCRMLEADADD", "https://a.b/rest/", "", "Y"]),
        st.text(max_size=30),
    )

    @quick
    @given(st.lists(st.tuples(st.lists(KEY_PARTS, min_size=1, max_size=7), VALUES), max_size=15))
    def test_form_like_bodies_give_an_event_or_a_wire_error(
        pairs: list[tuple[list[str], str]],
    ) -> None:
        keys = [parts[0] + "".join(f"[{part}]" for part in parts[1:]) for parts, _ in pairs]
        body = urlencode(list(zip(keys, [value for _, value in pairs], strict=True)))
        parses_or_refuses(body.encode())

    JSON_VALUES = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(KEY_PARTS, inner, max_size=4)
        ),
        max_leaves=30,
    )

    @quick
    @given(st.dictionaries(KEY_PARTS, JSON_VALUES, max_size=6))
    def test_json_like_bodies_give_an_event_or_a_wire_error(payload: dict[str, Any]) -> None:
        parses_or_refuses(json.dumps(payload).encode())

    @quick
    @given(
        st.fixed_dictionaries(
            {
                "data[FIELDS][ID]": st.text(max_size=25),
                "ts": st.text(max_size=25),
                "auth[application_token]": st.text(max_size=40),
            }
        )
    )
    def test_forged_values_give_an_event_or_a_wire_error_that_hides_them(
        forged: dict[str, str],
    ) -> None:
        pairs = dict(lead_pairs())
        pairs.update(forged)
        try:
            wire.parse_event(urlencode(pairs).encode())
        except WireError as error:
            token = forged["auth[application_token]"]
            assert len(token) < 4 or token not in str(error)

    NAMES = st.text(
        alphabet=st.characters(exclude_characters="[]", exclude_categories=["Cs"]),
        min_size=1,
        max_size=8,
    )
    PARAMS = st.recursive(
        st.one_of(st.text(max_size=20), st.integers()),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3),
            st.dictionaries(NAMES, inner, min_size=1, max_size=3),
        ),
        max_leaves=12,
    )

    def flatten(value: object, name: str) -> list[tuple[str, str]]:
        if isinstance(value, dict):
            return [pair for k, v in value.items() for pair in flatten(v, f"{name}[{k}]")]
        if isinstance(value, list):
            return [pair for i, v in enumerate(value) for pair in flatten(v, f"{name}[{i}]")]
        return [(name, str(value))]

    @quick
    @given(st.dictionaries(NAMES, PARAMS, max_size=4))
    def test_form_encode_round_trips_through_a_form_parser(params: dict[str, object]) -> None:
        expected = [pair for key, value in params.items() for pair in flatten(value, key)]

        encoded = wire.form_encode(params)

        assert parse_qsl(encoded, keep_blank_values=True) == expected
