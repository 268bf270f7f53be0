"""What the fuzzer sends: one strategy of requests per public route of the host.

Each route's strategy mixes what a genuine client sends (real ids, the real URL token, a
genuine Bitrix24 event, valid settings) with what a stranger might: ids in other scripts or
too long for 64 bits, non-ASCII tokens, JSON nested thousands deep, NaN, oversized bodies,
broken forms. Values near the genuine ones get past the first checks to the deeper ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from hypothesis import strategies as st
from starlette.routing import Mount, Route

from hooks.host.app import create_app
from hooks.host.state import HostConfig
from tests.test_host_api import VALID

Strategy = st.SearchStrategy
T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """What the strategies need to reach past the first checks: real ids, URL tokens, the
    connected portal and the application token of integration ``connected``."""

    connected: int  # active, connected to the sandbox portal by OAuth
    fresh: int  # created only
    odd_token: int  # a non-ASCII application token in its settings
    url_tokens: dict[int, str]
    app_token: str
    visit_id: str  # a visitor session the host handed out
    member_id: str
    domain: str
    portal_url: str


@dataclass(frozen=True)
class Call:
    route: str  # "METHOD /template" of the route table, for the figures
    method: str
    path: str  # percent-encoded
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    csrf: bool = True  # send the browser's CSRF token back, as the host's own pages do

    def describe(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return f"{self.method} {self.path} query={self.query} headers={self.headers} body={body!r}"


# --- values -----------------------------------------------------------------------------------

ODD_IDS = [
    "0",
    "01",
    "-1",
    "+1",
    "1.0",
    " 1",
    "1e3",
    "0x1",
    "²",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: int() reads it as 1
    "\u0662",
    "\uff11",  # FULLWIDTH DIGIT ONE
    "\U0001d7cf",  # MATHEMATICAL BOLD DIGIT ONE
    "9" * 19,
    "9" * 30,
    str(2**63 - 1),
    str(2**63),
    "",
]
ODD_TEXTS = [
    "é",
    "²",
    "\u0661",
    "токен",
    "\x00",
    "a" * 3000,
    "",
    " ",
    "[]",
    "{}",
    "NaN",
    "9" * 30,
]
odd_text: Strategy[str] = st.one_of(st.sampled_from(ODD_TEXTS), st.text(max_size=40))


def mostly(likely: Strategy[T], otherwise: Strategy[T]) -> Strategy[T]:
    """``likely`` three times in four, so that most requests get past a lookup or a parser to
    the checks behind it (``one_of`` picks each of its branches about as often)."""
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda pick: likely if pick else otherwise
    )


# An OAuth state is "<body>.<mac>", both parts base64url when the host signed it.
states = st.one_of(st.builds(lambda body, mac: f"{body}.{mac}", odd_text, odd_text), odd_text)


def ids(known: Sequence[int]) -> Strategy[str]:
    """An id in the path or the query: mostly ``known`` ones, else odd ones."""
    odd = st.one_of(
        st.sampled_from(ODD_IDS),
        st.integers(min_value=0, max_value=2**70).map(str),
        st.text(max_size=12),
    )
    return mostly(st.sampled_from([str(i) for i in known]), odd) if known else odd


QUERY_NAMES = [
    *("integration_id", "offset", "limit", "status", "state", "code", "saved", "via"),
    *("page", "from", "to"),
]


def queries(known: Sequence[int]) -> Strategy[list[tuple[str, str]]]:
    names = st.one_of(st.sampled_from(QUERY_NAMES), st.text(max_size=8))
    values = st.one_of(ids(known), odd_text, st.sampled_from(["pending", "failed", "app"]))
    return st.lists(st.tuples(names, values), max_size=4)


def _deep(depth: int) -> Strategy[bytes]:
    return st.sampled_from(
        [b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth]
    )


scalars: Strategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and ±Infinity are written as such by json.dumps
    odd_text,
)


def json_bodies(keys: Sequence[str], *templates: Strategy[dict[str, Any]]) -> Strategy[bytes]:
    """JSON documents keyed like the endpoint's own, near-valid ones, and broken bodies."""
    key = st.one_of(st.sampled_from(list(keys)), st.text(max_size=10))
    documents = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(key, inner, max_size=4)
        ),
        max_leaves=10,
    )
    return st.one_of(
        *(template.map(json.dumps) for template in templates),
        documents.map(json.dumps),
        st.integers(min_value=17, max_value=5000).flatmap(_deep),
        st.binary(max_size=200),
        st.sampled_from([4 * 1024 + 1, 8 * 1024 + 1, 256 * 1024 + 1]).map(lambda n: b" " * n),
    ).map(lambda body: body.encode() if isinstance(body, str) else body)


def near(valid: dict[str, Any], keys: Sequence[str]) -> Strategy[dict[str, Any]]:
    """``valid`` with a few keys changed to anything."""
    return st.dictionaries(st.sampled_from(list(keys)), scalars, max_size=3).map(
        lambda changes: {**valid, **changes}
    )


# Valid settings, as the API tests use them (the application token is the setup's own).
SETTINGS = {k: v for k, v in VALID.items() if k != "application_token"}
SETTINGS_KEYS = [
    *SETTINGS,
    "plan",
    "import_days",
    "campaign_id",
    "application_token",
    "site_domains",
    "tracker_getter",
]
VISIT = {"url": "https://shop.example.ru/?utm_source=yandex", "referrer": "https://ya.ru/"}
SESSION_KEYS = ["session_id", "openlines_session_id"]


CODE_KEYS = ["session_id", "channel"]


def visit_ids(visit_id: str) -> Strategy[Any]:
    """Mostly the host's own visit, else an id of the right shape or anything at all."""
    other_ids = st.one_of(st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True), odd_text)
    return mostly(st.just(visit_id), other_ids)


def session_reports(visit_id: str) -> Strategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "session_id": visit_ids(visit_id),
            "openlines_session_id": st.one_of(st.integers(min_value=-5, max_value=2**40), scalars),
        }
    )


def code_requests(visit_id: str) -> Strategy[dict[str, Any]]:
    """A prefetch (no channel) or a click on a messenger link (a channel, or anything there)."""
    channels = mostly(st.sampled_from(["telegram", "whatsapp", "viber"]), odd_text)
    return st.fixed_dictionaries(
        {"session_id": visit_ids(visit_id)}, optional={"channel": channels}
    )


new_integrations = st.fixed_dictionaries(
    {"plugin": st.one_of(st.just("b24_openlines"), odd_text), "name": odd_text}
)

FORM_NAMES = [
    "plugin",
    "name",
    *SETTINGS_KEYS,
    "messenger_map[telegrambot][source_id]",
    "messenger_map[telegrambot]",
    "a[b][c][d][e]",
    "csrf_token",
]
forms: Strategy[bytes] = st.lists(
    st.tuples(st.one_of(st.sampled_from(FORM_NAMES), st.text(max_size=15)), odd_text),
    max_size=6,
).map(lambda pairs: urlencode(pairs).encode())

CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "text/plain",
    "application/json; charset=utf-16",
]
SITE_ORIGINS = ["https://shop.example.ru", "http://127.0.0.1"]  # the demo catalog's sites
ORIGINS = [
    "null",
    "http://evil.example",
    "https://\xe9",
]


def headers(*, json_body: bool) -> Strategy[dict[str, str]]:
    """Mostly the content type the route reads and a site of the account as the origin."""
    content_type = mostly(
        st.just("application/json" if json_body else "application/x-www-form-urlencoded"),
        st.sampled_from(CONTENT_TYPES),
    )
    origin = mostly(st.sampled_from(SITE_ORIGINS), st.sampled_from(["", *ORIGINS]))
    return st.builds(
        lambda kind, site: {"content-type": kind} | ({"origin": site} if site else {}),
        content_type,
        origin,
    )


# --- Bitrix24 events --------------------------------------------------------------------------

EXTRA_EVENT_KEYS = [
    "auth[access_token]",
    "auth[refresh_token]",
    "auth[scope]",
    "auth[status]",
    "auth[user_id]",
    "auth[expires_in]",
    "event_handler_id",
    "data[FIELDS]",
    "auth",
    "data[FIELDS][ID][x]",
    "a[b][c][d][e][f]",
]


def genuine_event(setup: Setup, application_token: str) -> dict[str, str]:
    """The form fields of a lead event as the connected portal sends it."""
    return {
        "event": "ONCRMLEADADD",
        "event_handler_id": "7",
        "data[FIELDS][ID]": "1",
        "ts": "1742807900",
        "auth[domain]": setup.domain,
        "auth[client_endpoint]": f"{setup.portal_url}/rest/",
        "auth[server_endpoint]": f"{setup.portal_url}/rest/",
        "auth[member_id]": setup.member_id,
        "auth[application_token]": application_token,
    }


def events(setup: Setup) -> Strategy[bytes]:
    genuine = genuine_event(setup, setup.app_token)
    keys = st.one_of(st.sampled_from([*genuine, *EXTRA_EVENT_KEYS]), st.text(max_size=20))
    changes = st.dictionaries(keys, odd_text, max_size=3)
    dropped = st.sets(st.sampled_from(list(genuine)), max_size=2)

    def form(changed: dict[str, str], drop: set[str]) -> bytes:
        fields = {k: v for k, v in {**genuine, **changed}.items() if k not in drop}
        return urlencode(fields).encode()

    def as_json(changed: dict[str, Any]) -> bytes:
        event = {"event": "ONCRMLEADADD", "data": {"FIELDS": {"ID": 1}}, "ts": 1, **changed}
        return json.dumps(event).encode()

    json_changes = st.dictionaries(st.sampled_from(["auth", "data", "ts", "event"]), scalars)
    return mostly(
        st.one_of(st.just(form({}, set())), st.builds(form, changes, dropped)),
        st.one_of(
            st.builds(as_json, json_changes),
            st.integers(min_value=6, max_value=3000).flatmap(_deep),
            st.binary(max_size=300),
            st.just(b"x" * (64 * 1024 + 1)),
        ),
    )


# --- routes -----------------------------------------------------------------------------------


def served_routes() -> set[tuple[str, str]]:
    """(method, path template) of every route the host serves (HEAD goes with GET)."""
    served: set[tuple[str, str]] = set()
    for route in create_app(HostConfig(db=":memory:")).routes:
        if isinstance(route, Route):
            served |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
        elif isinstance(route, Mount):
            served.add(("GET", f"{route.path}/{{path}}"))
    return served


def _path(template: str, **params: str) -> str:
    path = template
    for name, value in params.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


NO_BODY = st.just(b"")


class RouteTable:
    """Strategies by route, ``"METHOD /template"`` as the route table spells it, and the
    (method, template) pairs they send."""

    def __init__(self) -> None:
        self.strategies: dict[str, Strategy[Call]] = {}
        self.covered: set[tuple[str, str]] = set()

    def add(
        self,
        route: str,
        *,
        path: Strategy[str] | None = None,
        body: Strategy[bytes] = NO_BODY,
        known: Sequence[int] = (),
        query: Strategy[list[tuple[str, str]]] | None = None,
        json_body: bool = True,
        also: Sequence[str] = (),
    ) -> None:
        """``path`` defaults to the template itself, ``query`` to ``queries(known)``;
        ``also``: other methods to send."""
        method, template = route.split(" ", 1)
        self.covered |= {(m, template) for m in (method, *also)}
        self.strategies[route] = st.builds(
            Call,
            route=st.just(route),
            method=mostly(st.just(method), st.sampled_from(also)) if also else st.just(method),
            path=path if path is not None else st.just(template),
            query=query if query is not None else queries(known),
            headers=headers(json_body=json_body),
            body=body,
            csrf=st.sampled_from([True, False]),  # mostly as the host's pages send it
        )


def routes(setup: Setup) -> RouteTable:
    """Every public route of the host (``tests/test_fuzz.py`` checks that none is missing),
    and ``ANY /{anything}``: any of their requests with another method."""
    everyone = [setup.connected, setup.fresh, setup.odd_token]
    editable = [setup.fresh, setup.odd_token]  # the connected one stays as it was set up

    def by_id(template: str, known: Sequence[int]) -> Strategy[str]:
        return ids(known).map(lambda i: _path(template, integration_id=i, item_id=i))

    genuine_paths = st.sampled_from(
        [_path("/webhooks/{i}/{t}", i=str(i), t=t) for i, t in setup.url_tokens.items()]
    )
    webhook_paths = mostly(
        genuine_paths,
        st.one_of(
            st.builds(lambda i, t: _path("/webhooks/{i}/{t}", i=i, t=t), ids(everyone), odd_text),
            st.sampled_from(ODD_IDS).map(
                lambda i: _path("/webhooks/{i}/{t}", i=i, t=setup.url_tokens[setup.connected])
            ),
        ),
    )
    static_files = st.one_of(
        st.sampled_from(["style.css", "host.js", "..%2Fapp.py", "%2e%2e/app.py"]),
        st.text(max_size=20).map(lambda name: quote(name, safe="")),
    )
    table = RouteTable()
    # The routes that create integrations come last: every page and list renders all of them.
    table.add("GET /", also=["HEAD"])
    table.add(
        "GET /integrations/{integration_id}/settings",
        path=by_id("/integrations/{integration_id}/settings", everyone),
        also=["HEAD"],
    )
    table.add(
        "POST /integrations/{integration_id}/settings",
        path=by_id("/integrations/{integration_id}/settings", editable),
        body=forms,
        json_body=False,
    )
    table.add(
        "GET /integrations/{integration_id}/connect",
        path=by_id("/integrations/{integration_id}/connect", everyone),
    )
    table.add(
        "GET /oauth2/callback",
        query=st.builds(lambda state, rest: [("state", state), *rest], states, queries([])),
    )
    table.add("GET /raw/appeals", known=everyone)
    table.add("GET /raw/appeals.csv", known=everyone)
    table.add("GET /inbox")
    table.add(
        "POST /inbox/{item_id}/retry",
        path=by_id("/inbox/{item_id}/retry", [1, 2, 3]),
        json_body=False,
    )
    table.add(
        "POST /webhooks/{integration_id}/{token}",
        path=webhook_paths,
        body=events(setup),
        json_body=False,
    )
    table.add("GET /api/integrations")
    table.add(
        "GET /api/integrations/{integration_id}",
        path=by_id("/api/integrations/{integration_id}", everyone),
    )
    for method in ("PUT", "PATCH"):
        table.add(
            f"{method} /api/integrations/{{integration_id}}/settings",
            path=by_id("/api/integrations/{integration_id}/settings", editable),
            body=json_bodies(SETTINGS_KEYS, near(SETTINGS, SETTINGS_KEYS)),
        )
    table.add(
        "POST /api/sessions/{integration_id}",
        path=by_id("/api/sessions/{integration_id}", everyone),
        body=json_bodies(SESSION_KEYS, session_reports(setup.visit_id)),
        also=["OPTIONS"],
    )
    table.add(
        "POST /api/messenger-codes/{integration_id}",
        path=by_id("/api/messenger-codes/{integration_id}", everyone),
        body=json_bodies(CODE_KEYS, code_requests(setup.visit_id)),
        also=["OPTIONS"],
    )
    table.add("GET /api/catalog")
    table.add("GET /api/appeals", known=everyone)
    table.add(
        "POST /api/visits",
        body=json_bodies(list(VISIT), near(VISIT, list(VISIT))),
        also=["OPTIONS"],
    )
    table.add("GET /tracker.js")
    for probe in ("/healthz", "/readyz", "/metrics"):
        table.add(f"GET {probe}", also=["HEAD"])
    table.add("GET /static/{path}", path=static_files.map(lambda name: f"/static/{name}"))
    for action, known in (("check", everyone), ("disconnect", editable)):
        table.add(
            f"POST /integrations/{{integration_id}}/{action}",
            path=by_id(f"/integrations/{{integration_id}}/{action}", known),
            json_body=False,
        )
    table.add(
        "POST /integrations/{integration_id}/rename",
        path=by_id("/integrations/{integration_id}/rename", editable),
        body=forms,
        json_body=False,
    )
    table.add(
        "GET /integrations/{integration_id}/delete",
        path=by_id("/integrations/{integration_id}/delete", everyone),
    )
    table.add(
        "POST /integrations/{integration_id}/delete",
        path=by_id("/integrations/{integration_id}/delete", editable),
        body=forms,
        json_body=False,
    )
    table.add(
        "PATCH /api/integrations/{integration_id}",
        path=by_id("/api/integrations/{integration_id}", editable),
        body=json_bodies(["name"], new_integrations),
    )
    table.add(
        "DELETE /api/integrations/{integration_id}",
        path=by_id("/api/integrations/{integration_id}", editable),
    )
    table.add("POST /integrations", body=forms, json_body=False)
    table.add("POST /api/integrations", body=json_bodies(["plugin", "name"], new_integrations))

    def another_method(call: Call, method: str) -> Call:
        """``call`` with ``method``; the connected integration's own routes get only methods
        that write nothing (``DELETE /api/integrations/{connected}`` deleted it, and the
        webhook tests after the fuzz, on the same host, found it gone: a 404)."""
        if method not in SAFE_METHODS and _of_integration(call.path, setup.connected):
            method = "GET"
        return replace(call, route="ANY /{anything}", method=method)

    table.strategies["ANY /{anything}"] = st.builds(
        another_method,
        st.one_of(*table.strategies.values()),
        st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    )
    return table


SAFE_METHODS = frozenset({"GET", "OPTIONS"})


def _of_integration(path: str, integration_id: int) -> bool:
    """Whether ``path`` is one of the integration's pages or API routes."""
    parts = path.split("/")
    own = str(integration_id)
    return parts[1:3] == ["integrations", own] or parts[1:4] == ["api", "integrations", own]
