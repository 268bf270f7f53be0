"""Messenger links with the visit's code, in a real Chromium.

End to end: a visit with UTM tags on the sandbox's demo site → the Telegram button → the
sandbox's messenger emulator → "Send" → the appeal has that visit's campaign and UTM tags; a
WhatsApp chat whose visitor deleted the code takes the messenger's mapping.

Script level: the site script alone on a page served by a small local site (the client's), whose
code endpoint is a fake host at the HTTP level (it records what it is sent and answers, as slowly
as a test asks). A listener on the window in the bubbling phase, as the sandbox's emulator
listens, records each link's final href and keeps the page where it is.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from playwright.sync_api import Page

from b24_openlines_plugin.site_script import MessengerLink, render_site_script
from tests.browser.conftest import PageErrors
from tests.browser.test_site_chat import UTM, assert_landing_visit, install_on_site
from tests.servers import Servers

CODE = "K7PM2QXA"
SESSION = "visit-session-id-0123456789"


# --- end to end: the demo site, the emulator, the host ------------------------------------


def codes_asked(page: Page) -> list[dict[str, Any]]:
    """The bodies the page sends to the host's code endpoint, as they go."""
    sent: list[dict[str, Any]] = []

    def seen(request: Any) -> None:
        if "/api/messenger-codes/" in request.url and request.method == "POST":
            sent.append(json.loads(request.post_data or "{}"))

    page.on("request", seen)
    return sent


def landing_with_code(servers: Servers, page: Page) -> str:
    """The visitor comes from an ad; the page has asked for the visit's code once it is known."""
    with page.expect_response(
        lambda r: "/api/messenger-codes/" in r.url and r.request.method == "POST"
    ) as answer:
        page.goto(f"{servers.portal_url}/site/landing?{UTM}")
    assert answer.value.status == 201, answer.value.text()
    visit: str = page.evaluate("() => window.analyticsHost.getSessionId()")
    assert visit
    return visit


def test_a_telegram_chat_from_the_sites_button_carries_the_visits_campaign(
    servers: Servers, page: Page
) -> None:
    integration = servers.integration(links_telegram=True, links_telegram_bot="garden_shop_bot")
    servers.connect(integration["id"])
    install_on_site(servers, tracker=True, site_script=integration["site_script"])
    errors = PageErrors(page)
    asked = codes_asked(page)

    visit = landing_with_code(servers, page)
    assert page.get_attribute("#write-telegram", "href") == "https://t.me/garden_shop_bot"
    with page.expect_popup() as opened:  # the button opens a new tab (target=_blank)
        page.click("#write-telegram")
    emulator = opened.value
    emulator.wait_for_selector("#messenger-start")
    start = emulator.inner_text("#messenger-start")
    assert start.startswith("/start ")
    code = start.removeprefix("/start ")
    link = emulator.inner_text("#messenger-link")
    assert link == f"https://t.me/garden_shop_bot?start={code}"
    assert asked == [{"session_id": visit}, {"session_id": visit, "channel": "telegram"}]
    emulator.fill("#messenger-name", "Мария")
    emulator.fill("#messenger-message", "Нужен гамак")
    emulator.click("#messenger-send")
    emulator.wait_for_selector("#messenger-chat[data-connector='telegrambot']")

    [appeal] = servers.appeals()
    assert_landing_visit(appeal["attribution"], visit)
    assert "Нужен гамак" in appeal["text"]
    assert errors.errors == []

    page.goto(f"{servers.host_url}/raw/appeals")
    row = page.locator("table.appeals tbody tr").first.inner_text()
    assert "Весенняя распродажа" in row and "Telegram" in row and "utm_campaign=spring_sale" in row


def test_a_whatsapp_chat_whose_visitor_deleted_the_code_takes_the_mapping(
    servers: Servers, page: Page
) -> None:
    integration = servers.integration(
        links_whatsapp=True,
        links_whatsapp_number="+7 999 000-11-22",
        links_whatsapp_text="Здравствуйте! Пишу с сайта",
        messenger_map={"whatsappbyedna": {"source_id": 5, "site_id": 1}},
    )
    servers.connect(integration["id"])
    install_on_site(servers, tracker=True, site_script=integration["site_script"])
    errors = PageErrors(page)
    asked = codes_asked(page)

    visit = landing_with_code(servers, page)
    page.click("#write-whatsapp")  # the same tab: the emulator replaces the page
    page.wait_for_selector("#messenger[data-connector='whatsappbyedna']")
    prefilled = page.input_value("#messenger-message")
    assert prefilled.startswith("Здравствуйте! Пишу с сайта [#") and prefilled.endswith("]")
    code = prefilled.removeprefix("Здравствуйте! Пишу с сайта [#").removesuffix("]")
    assert len(code) == 8
    assert asked == [{"session_id": visit}, {"session_id": visit, "channel": "whatsapp"}]
    page.fill("#messenger-message", "Здравствуйте! Пишу с сайта")  # the visitor deletes the code
    page.click("#messenger-send")
    page.wait_for_selector("#messenger-chat[data-connector='whatsappbyedna']")

    [appeal] = servers.appeals()
    attribution = appeal["attribution"]
    assert attribution["method"] == "messenger" and attribution["session_id"] is None
    assert (attribution["source_id"], attribution["site_id"]) == (5, 1)
    assert code not in appeal["text"]
    assert errors.errors == []


# --- script level: a client's page, the site script and a fake host ------------------------


@dataclass
class FakeSite:
    """The client's site (``GET /``: ``html``) and the host's code endpoint (``POST /codes``),
    on one loopback origin; the endpoint answers ``code`` after ``delay`` seconds."""

    url: str = ""
    html: str = ""
    code: str = CODE
    status: int = 201
    delay: float = 0.0
    asked: list[dict[str, Any]] = field(default_factory=list)

    def bodies(self, settle: float = 0.3) -> list[dict[str, Any]]:
        time.sleep(settle)  # a keepalive request may still be on its way
        return list(self.asked)


def _handler(site: FakeSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except ConnectionError:
                pass  # the test is over and its browser gone: a slow answer finds no one

        def do_GET(self) -> None:
            self._send(200, site.html.encode(), "text/html; charset=utf-8")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            site.asked.append(json.loads(body))
            time.sleep(site.delay)
            answer = json.dumps({"code": site.code}).encode()
            self._send(site.status, answer, "application/json")

    return Handler


@pytest.fixture
def fake_site() -> Iterator[FakeSite]:
    site = FakeSite()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads, server.block_on_close = True, False  # a slow answer never holds on
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


RECORDER = """<script>
  window.finalHrefs = [];
  window.addEventListener("click", function (event) {
    var link = event.target.closest("a");
    if (!link) return;
    window.finalHrefs.push(link.href);
    if (!window.letGo) event.preventDefault();
  });
</script>"""
TRACKER = (
    "<script>window.tracker = {id: %s, getSessionId: function () { return this.id; }};</script>"
)
CONFIGURED = (
    MessengerLink("telegram", "Shop_Bot"),
    MessengerLink("whatsapp", "79990001122", "Здравствуйте!"),
    MessengerLink("viber", "gardenshop", "Вопрос по заказу"),
)
LINKS = {
    "bot": "https://t.me/shop_bot",
    "bot-app": "tg://resolve?domain=SHOP_BOT",
    "bot-own-start": "https://t.me/shop_bot?start=promo",
    "other-bot": "https://t.me/other_bot",
    "channel": "https://t.me/joinchat/AAAA",
    "wa": "https://wa.me/79990001122",
    "wa-api": "https://api.whatsapp.com/send?phone=%2B7%20999%20000-11-22&text=Hi%20there",
    "wa-app": "whatsapp://send?phone=79990001122",
    "wa-other": "https://wa.me/71112223344",
    "viber": "viber://pa?chatURI=gardenshop",
    "viber-other": "viber://pa?chatURI=othershop",
    "site": "/contacts?x=1",
}


def page_html(
    site: FakeSite, *, session: str | None = SESSION, links: tuple[MessengerLink, ...] = CONFIGURED
) -> str:
    script = render_site_script(
        endpoint=f"{site.url}/sessions",
        getter="tracker.getSessionId",
        language="ru",
        code_endpoint=f"{site.url}/codes",
        links=links,
    )
    anchors = "\n".join(
        f'<a id="{name}" href="{href}"><span>{name}</span></a>' for name, href in LINKS.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
{TRACKER % json.dumps(session)}
{script}
</head><body>{anchors}
{RECORDER}</body></html>"""


def click_all(page: Page, names: list[str]) -> dict[str, str]:
    """Each link clicked (on its inner span), one after the other: the href the page finally
    saw, by link (a click that waits for the code is seen when it goes on)."""
    before = page.evaluate("() => window.finalHrefs.length")
    for number, name in enumerate(names, before + 1):
        page.click(f"#{name} span")
        page.wait_for_function("n => window.finalHrefs.length >= n", arg=number)
    hrefs: list[str] = page.evaluate("() => window.finalHrefs")
    return dict(zip(names, hrefs[before:], strict=True))


def first_asked(site: FakeSite) -> None:
    deadline = time.monotonic() + 5
    while not site.asked and time.monotonic() < deadline:
        time.sleep(0.05)


def uri_component(text: str) -> str:
    """As JavaScript's encodeURIComponent writes it."""
    return quote(text, safe="!~*'()")


def text_of(href: str) -> str:
    return parse_qs(urlsplit(href).query)["text"][0]


def test_the_configured_links_get_the_code_and_the_others_stay_as_they_were(
    fake_site: FakeSite, page: Page
) -> None:
    fake_site.html = page_html(fake_site)
    errors = PageErrors(page)
    page.goto(fake_site.url)
    first_asked(fake_site)
    assert fake_site.bodies() == [{"session_id": SESSION}]  # asked once, with the page

    hrefs = click_all(page, list(LINKS))
    assert hrefs["bot"] == f"https://t.me/shop_bot?start={CODE}"
    assert hrefs["bot-app"] == f"tg://resolve?domain=SHOP_BOT&start={CODE}"
    assert text_of(hrefs["wa"]) == f"Здравствуйте! [#{CODE}]"
    assert hrefs["wa"] == "https://wa.me/79990001122?text=" + uri_component(
        f"Здравствуйте! [#{CODE}]"
    )
    assert text_of(hrefs["wa-api"]) == f"Hi there [#{CODE}]"  # the link's own text first
    assert hrefs["wa-api"].startswith("https://api.whatsapp.com/send?phone=%2B7%20999%20000-11-22&")
    assert hrefs["wa-app"].startswith("whatsapp://send?phone=79990001122&text=")
    assert text_of(hrefs["viber"]) == f"Вопрос по заказу [#{CODE}]"
    untouched = ["bot-own-start", "other-bot", "channel", "wa-other", "viber-other"]
    for name in untouched:
        assert hrefs[name] == LINKS[name], name
    assert hrefs["site"] == f"{fake_site.url}/contacts?x=1"
    counted = sorted(body.get("channel") for body in fake_site.bodies()[1:])
    assert counted == ["telegram", "telegram", "viber", "whatsapp", "whatsapp", "whatsapp"]

    # Clicked again, a link gets the code once, from its own href as it was; a new code the
    # host gives (the visit's code was taken by a chat) goes into the next clicks.
    assert click_all(page, ["bot", "wa"]) == {"bot": hrefs["bot"], "wa": hrefs["wa"]}
    fake_site.code = "Q2W3E4R5"
    click_all(page, ["viber"])
    fake_site.bodies()
    again = click_all(page, ["bot", "wa"])
    assert again["bot"] == "https://t.me/shop_bot?start=Q2W3E4R5"
    assert text_of(again["wa"]) == "Здравствуйте! [#Q2W3E4R5]"
    assert errors.errors == []


def test_buttons_added_later_get_the_code_too(fake_site: FakeSite, page: Page) -> None:
    fake_site.html = page_html(fake_site)
    page.goto(fake_site.url)
    page.evaluate(
        """() => {
          const button = document.createElement("a");
          button.id = "late";
          button.href = "https://wa.me/79990001122?text=" + encodeURIComponent("Хочу стул");
          button.innerHTML = "<b>WhatsApp</b>";
          document.body.appendChild(button);
        }"""
    )
    page.click("#late b")
    [href] = page.evaluate("() => window.finalHrefs")
    assert text_of(href) == f"Хочу стул [#{CODE}]"


@pytest.mark.parametrize(
    "case",
    ["telegram off", "no session", "no links configured", "host refuses"],
)
def test_links_stay_as_they_were(fake_site: FakeSite, page: Page, case: str) -> None:
    if case == "telegram off":
        fake_site.html = page_html(fake_site, links=CONFIGURED[1:])
        names = ["bot", "bot-app"]
    elif case == "no session":
        fake_site.html = page_html(fake_site, session=None)
        names = list(LINKS)
    elif case == "no links configured":
        fake_site.html = page_html(fake_site, links=())
        names = list(LINKS)
    else:
        fake_site.status = 403
        fake_site.html = page_html(fake_site)
        names = list(LINKS)
    errors = PageErrors(page)
    page.goto(fake_site.url)
    page.wait_for_timeout(300)
    hrefs = click_all(page, names)
    expected = {name: LINKS[name] for name in names} | (
        {"site": f"{fake_site.url}/contacts?x=1"} if "site" in names else {}
    )
    assert hrefs == expected
    asked = fake_site.bodies()
    if case == "host refuses":
        assert asked and all(body["session_id"] == SESSION for body in asked)
    elif case == "telegram off":
        assert all(body.get("channel") != "telegram" for body in asked)
    else:
        assert asked == []
    # The browser reports the refused requests itself; the script throws nothing.
    assert [e for e in errors.errors if "Failed to load resource" not in e] == []


def test_a_click_before_the_code_waits_for_it_briefly(fake_site: FakeSite, page: Page) -> None:
    """No code yet (the host is slow): a link opening in this page waits for the code, 700 ms
    at most; a link opening a new tab never waits, and goes as it was."""
    fake_site.html = page_html(fake_site)
    fake_site.delay = 0.3
    page.goto(fake_site.url, wait_until="domcontentloaded")
    page.click("#wa span")  # before the page's request is answered
    page.wait_for_function("() => window.finalHrefs.length === 1")
    [href] = page.evaluate("() => window.finalHrefs")
    assert text_of(href) == f"Здравствуйте! [#{CODE}]"

    fake_site.delay = 3.0
    fake_site.code = "Z9X8C7V6"
    page.evaluate("() => { window.tracker.id = 'another-visit-0123456789'; }")
    started = time.monotonic()
    page.click("#bot span")
    page.wait_for_function("() => window.finalHrefs.length === 2", timeout=3000)
    assert time.monotonic() - started < 1.5
    assert page.evaluate("() => window.finalHrefs[1]") == LINKS["bot"]  # went on unchanged

    page.evaluate("() => { window.tracker.id = 'a-third-visit-0123456789'; }")
    page.click("#viber span", modifiers=["Control"])  # a new tab: no waiting
    assert page.evaluate("() => window.finalHrefs[2]") == LINKS["viber"]


def test_a_new_tab_opens_with_the_code_and_the_page_navigates(
    fake_site: FakeSite, page: Page
) -> None:
    """Real navigations: the messenger's site in a new tab (popup blockers allow it: the href
    is set during the click), and in the page itself."""
    fake_site.html = page_html(fake_site).replace(
        '<a id="bot" href', '<a id="bot" target="_blank" href'
    )
    opened: list[str] = []

    def messenger(route: Any) -> None:
        opened.append(unquote(route.request.url))
        route.fulfill(status=200, content_type="text/html", body="<p>messenger</p>")

    page.context.route("https://t.me/**", messenger)
    page.context.route("https://wa.me/**", messenger)
    page.goto(fake_site.url)
    page.evaluate("() => { window.letGo = true; }")
    first_asked(fake_site)
    page.wait_for_timeout(200)
    with page.expect_popup() as popup:
        page.click("#bot span")
    popup.value.wait_for_load_state()
    assert popup.value.url == f"https://t.me/shop_bot?start={CODE}"
    with page.expect_navigation():
        page.click("#wa span")
    assert page.url.startswith("https://wa.me/79990001122?text=")
    assert opened[-1] == f"https://wa.me/79990001122?text=Здравствуйте! [#{CODE}]"
