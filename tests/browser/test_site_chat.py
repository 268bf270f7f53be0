"""A visit with UTM tags, a chat in the live-chat widget, and the appeal that comes of it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import PageErrors
from tests.servers import Servers

UTM = "utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale&utm_content=banner&utm_term=sofa"


def assert_landing_visit(attribution: dict[str, Any], visit: str) -> None:
    """The appeal carries the visit to the landing page (``UTM``): its campaign and every tag."""
    assert (attribution["method"], attribution["session_id"]) == ("session", visit)
    assert (attribution["campaign_id"], attribution["source_id"]) == (1, 1)
    assert attribution["utm"] == dict(pair.split("=") for pair in UTM.split("&"))


def install_on_site(servers: Servers, *, tracker: bool, site_script: str) -> None:
    """What the client does on their site: the platform's tracker, then the site script."""
    head = (
        f'<script src="{servers.host_url}/tracker.js"></script>\n' if tracker else ""
    ) + site_script
    answer = servers.client.put(f"{servers.portal_url}/sandbox/api/site", json={"head_html": head})
    assert answer.status_code == 200, answer.text


def chat_in_widget(page: Page, *, name: str, message: str) -> int:
    page.click("#b24-widget-button")
    page.fill("#b24-name", name)
    page.fill("#b24-message", message)
    page.click("#b24-send")
    page.wait_for_selector("#b24-widget[data-session-id]")
    session = page.get_attribute("#b24-widget", "data-session-id")
    assert session is not None
    return int(session)


@pytest.mark.parametrize("order", ["after", "before"])
def test_a_visit_with_utm_tags_then_a_chat_is_attributed_to_that_visit(
    servers: Servers, page: Page, order: str
) -> None:
    integration = servers.integration()
    servers.connect(integration["id"])
    install_on_site(servers, tracker=True, site_script=integration["site_script"])
    errors = PageErrors(page)

    page.goto(f"{servers.portal_url}/site/landing?{UTM}&widget={order}")
    page.wait_for_function("() => window.analyticsHost && window.analyticsHost.getSessionId()")
    visitor_session = page.evaluate("() => window.analyticsHost.getSessionId()")
    page.click("a[href*='catalog']")  # the visitor browses on: the session stays
    page.wait_for_function("() => window.analyticsHost && window.analyticsHost.getSessionId()")
    assert page.evaluate("() => window.analyticsHost.getSessionId()") == visitor_session
    openlines_session = chat_in_widget(page, name="Светлана", message="Нужен диван к пятнице")

    [appeal] = servers.appeals()
    assert appeal["key"].endswith(f":session:{openlines_session}")
    assert_landing_visit(appeal["attribution"], visitor_session)
    assert appeal["contact"]["name"] == "Светлана" and "Нужен диван к пятнице" in appeal["text"]
    binding = servers.client.get(f"{servers.host_url}/api/appeals").json()["appeals"][0]
    assert binding["attribution"]["session_id"] == visitor_session
    assert errors.errors == []

    page.goto(f"{servers.host_url}/raw/appeals")
    assert page.locator("table.appeals tbody tr").count() == 1
    row = page.locator("table.appeals tbody tr").first.inner_text()
    assert "Весенняя распродажа" in row and "Светлана" in row and "utm_campaign=spring_sale" in row


def test_without_the_platforms_tracker_the_page_works_and_the_appeal_takes_the_default(
    servers: Servers, page: Page
) -> None:
    integration = servers.integration()
    servers.connect(integration["id"])
    install_on_site(servers, tracker=False, site_script=integration["site_script"])
    errors = PageErrors(page)

    page.goto(f"{servers.portal_url}/site/landing?{UTM}")
    chat_in_widget(page, name="Без трекера", message="Здравствуйте")

    [appeal] = servers.appeals()
    assert appeal["attribution"]["method"] == "default"
    assert (appeal["attribution"]["source_id"], appeal["attribution"]["site_id"]) == (6, 1)
    assert errors.errors == []


def write_in_widget(page: Page, message: str) -> int:
    """Another message in the dialog under way (the widget restores it on each page)."""
    page.click("#b24-widget-button")
    before = page.locator("#b24-messages li[data-status='sent']").count()
    page.fill("#b24-message", message)
    page.click("#b24-send")
    page.wait_for_function(
        "n => document.querySelectorAll(\"#b24-messages li[data-status='sent']\").length > n",
        arg=before,
    )
    session = page.get_attribute("#b24-widget", "data-session-id")
    assert session is not None
    return int(session)


def complete_appeal(servers: Servers, last_text: str, timeout: float = 20.0) -> dict[str, Any]:
    """The one appeal, once its transcript has ``last_text`` (written when the dialog closes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [appeal] = servers.appeals()
        if last_text in appeal["text"]:
            return appeal
        time.sleep(0.1)
    raise AssertionError(f"no appeal with {last_text!r} after {timeout} s")


def test_the_marker_is_written_once_per_dialog_in_the_hosts_language(
    servers: Servers, page: Page
) -> None:
    """The visitor writes on three pages of the site, which carries the script twice: one
    dialog, one operator-facing line in Russian (the host's language), one report."""
    integration = servers.integration()
    servers.connect(integration["id"])
    script = integration["site_script"]
    install_on_site(servers, tracker=True, site_script=script + "\n" + script)
    errors = PageErrors(page)
    reports: list[str] = []
    page.on(
        "request",
        lambda r: reports.append(r.url) if "/api/sessions/" in r.url and r.method == "POST" else 0,
    )

    page.goto(f"{servers.portal_url}/site/landing?{UTM}")
    page.wait_for_function("() => window.analyticsHost && window.analyticsHost.getSessionId()")
    visitor_session = page.evaluate("() => window.analyticsHost.getSessionId()")
    dialog = chat_in_widget(page, name="Ольга", message="Есть ли доставка?")
    for path, text in (("catalog", "А стулья?"), ("product", "Беру этот")):
        page.goto(f"{servers.portal_url}/site/{path}")
        assert write_in_widget(page, text) == dialog  # the same dialog goes on
    chat_id = page.get_attribute("#b24-widget", "data-chat-id")
    closed = servers.client.post(f"{servers.portal_url}/sandbox/api/chats/{chat_id}/close")
    assert closed.status_code == 200, closed.text

    appeal = complete_appeal(servers, "Беру этот")
    marks = [m["text"] for m in appeal["messages"] if visitor_session in m["text"]]
    assert marks == [f"Data received:\nСессия аналитики: {visitor_session}"]
    assert "Analytics session" not in appeal["text"] + str(appeal["messages"])
    assert (appeal["attribution"]["method"], appeal["attribution"]["session_id"]) == (
        "session",
        visitor_session,
    )
    assert len(reports) == 1
    assert errors.errors == []
