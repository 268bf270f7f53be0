"""Issue 13's done-when, in a real browser: a new user who breaks the connection sees it on the
first page within a minute, in Russian, with what to do."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import PageErrors
from tests.servers import Servers


def test_a_broken_connection_shows_red_in_russian_on_the_first_page(
    servers: Servers, page: Page
) -> None:
    integration = servers.integration()
    servers.connect(integration["id"])
    errors = PageErrors(page)
    page.goto(f"{servers.host_url}/")
    row = page.locator(f"#integration-{integration['id']}")
    expect(row.locator(".badge")).to_have_class("badge ok")

    # The portal starts refusing the application (Bitrix24's ACCESS_DENIED), and a chat comes.
    refused = servers.client.post(
        f"{servers.portal_url}/sandbox/api/faults", json={"error": "ACCESS_DENIED", "times": 1000}
    )
    assert refused.status_code < 300, refused.text
    started = servers.client.post(
        f"{servers.portal_url}/sandbox/api/chats",
        json={
            "visitor": {"name": "Анна"},
            "messages": [{"author": "visitor", "text": "Добрый день"}],
        },
    )
    assert started.status_code == 201, started.text

    failed = row.locator("a[href='/inbox?status=failed']")
    for _ in range(60):  # within a minute: the page as the user reloads it
        page.goto(f"{servers.host_url}/")
        # Red as soon as the periodic run or the chat's delivery is refused; the delivery's
        # failure is counted once its drain writes it.
        if "error" in (row.locator(".badge").get_attribute("class") or "") and failed.count():
            break
        page.wait_for_timeout(1000)
    badge = row.locator(".badge")
    expect(badge).to_have_class("badge error")
    expect(badge).to_contain_text("Битрикс24 отказал в доступе (ACCESS_DENIED)")
    expect(badge).to_contain_text("проверьте тариф и права")  # what to do
    expect(failed).to_be_visible()

    # The settings page says the same, and its check gives the live answer.
    row.locator("text=Настройки").click()
    expect(page.locator("#status")).to_have_class("badge error")
    page.click("#check")
    expect(page.locator("#check-result")).to_contain_text("Битрикс24 отказал в доступе")
    assert errors.errors == []
