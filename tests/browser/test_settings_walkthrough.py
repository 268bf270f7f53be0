"""The client's eight setup steps in a real browser, down to connecting the portal with OAuth."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import PageErrors
from tests.servers import Servers


def test_the_eight_steps_in_the_browser(servers: Servers, page: Page) -> None:
    app = servers.client.get(f"{servers.portal_url}/sandbox/api/app").json()
    errors = PageErrors(page)
    page.goto(f"{servers.host_url}/")
    page.fill("input[name=name]", "Мой магазин")
    page.click("text=Подключить интеграцию")
    expect(page.locator("h1")).to_have_text("Настройки")

    # 1. Credentials, 2. active, 3. webhook URL shown to copy, 4. employee.
    page.fill("#f-client_id", app["client_id"])
    page.fill("#f-client_secret", app["client_secret"])
    page.fill("#f-portal", servers.portal_url)
    page.check("#f-active")
    assert page.input_value("#webhook_url").startswith(f"{servers.host_url}/webhooks/")
    assert page.input_value("#redirect_url") == f"{servers.host_url}/oauth2/callback"
    page.select_option("#f-employee_id", label="Иван Петров")

    # 5. Traffic type: the choices follow it.
    expect(page.locator("#f-source_id")).to_be_visible()
    expect(page.locator("#f-campaign_id")).to_be_hidden()
    telegram_source = page.locator("select[name='messenger_map[telegrambot][source_id]']")
    telegram_campaign = page.locator("select[name='messenger_map[telegrambot][campaign_id]']")
    expect(telegram_source).to_be_visible()
    expect(telegram_campaign).to_be_hidden()
    page.check("input[name=traffic_type][value=campaign]")
    expect(page.locator("#f-source_id")).to_be_hidden()
    expect(page.locator("#f-campaign_id")).to_be_visible()
    expect(telegram_campaign).to_be_visible()
    expect(telegram_source).to_be_hidden()
    page.select_option("#f-campaign_id", label="Бренд")
    # 6. Messengers → campaigns.
    telegram_campaign.select_option(label="Мессенджеры по умолчанию")

    # 7. Save; 8. the site script is shown.
    page.click("button:has-text('Сохранить')")
    expect(page.locator(".notice.ok")).to_have_text("Настройки сохранены.")
    script = page.input_value("#site_script")
    assert (
        script.startswith("<script>")
        and "/api/sessions/" in script
        and "analyticsHost.getSessionId" in script
    )
    assert app["client_secret"] not in page.content()
    expect(page.locator("#f-client_secret")).to_have_value("")
    expect(page.locator("#f-campaign_id")).to_be_visible()  # reopened with what was saved

    # Connect Bitrix24: the portal's consent page, Allow, and back.
    page.click("text=Подключить Битрикс24")
    expect(page.locator("h1")).to_contain_text("requests access")
    page.click("button:has-text('Allow')")
    expect(page.locator(".notice.ok")).to_have_text("Битрикс24 подключён.")
    expect(page.locator("#status")).to_contain_text("Подключено")
    settings = servers.client.get(f"{servers.host_url}/api/integrations/1").json()["settings"]
    assert settings["traffic_type"] == "campaign" and settings["campaign_id"] == 2
    assert settings["messenger_map"] == {"telegrambot": {"campaign_id": 3}}
    assert settings["employee_id"] == 2
    assert errors.errors == []
