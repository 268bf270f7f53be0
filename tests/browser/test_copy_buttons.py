"""The settings page's copy buttons in a real browser: they copy, say so for a couple of seconds
(to screen readers too), and without the clipboard API leave the text selected."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import PageErrors
from tests.servers import Servers

# What a page served over plain http (not loopback) has: no clipboard API, and a browser that
# refuses the old copy command too.
NO_CLIPBOARD = """
Object.defineProperty(Navigator.prototype, "clipboard", { get: () => undefined });
Document.prototype.execCommand = () => false;
"""


def settings_page(context: BrowserContext, url: str) -> Page:
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(url)
    return page


def test_a_copy_button_copies_and_says_so(servers: Servers, browser: Browser) -> None:
    integration = servers.integration()
    url = f"{servers.host_url}/integrations/{integration['id']}/settings"
    context = browser.new_context(locale="ru-RU")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=servers.host_url)
    page = settings_page(context, url)
    errors = PageErrors(page)
    button = page.locator("button[data-copy=webhook_url]")
    expect(button).to_have_text("Копировать")
    webhook_url = page.input_value("#webhook_url")
    assert webhook_url.startswith(f"{servers.host_url}/webhooks/")

    button.click()
    expect(button).to_have_text("Скопировано")
    expect(page.locator("#copy-status")).to_have_text("Скопировано")
    expect(page.locator("#copy-status")).to_have_attribute("aria-live", "polite")
    assert page.evaluate("navigator.clipboard.readText()") == webhook_url
    # A couple of seconds later the button is a copy button again.
    expect(button).to_have_text("Копировать", timeout=5_000)
    expect(page.locator("#copy-status")).to_have_text("")

    # The site script's button copies the whole script.
    page.locator("button[data-copy=site_script]").click()
    expect(page.locator("button[data-copy=site_script]")).to_have_text("Скопировано")
    assert page.evaluate("navigator.clipboard.readText()") == page.input_value("#site_script")
    assert errors.errors == []
    context.close()


def test_without_the_clipboard_api_the_text_is_selected(servers: Servers, browser: Browser) -> None:
    integration = servers.integration()
    context = browser.new_context(locale="ru-RU")
    context.add_init_script(NO_CLIPBOARD)
    page = settings_page(context, f"{servers.host_url}/integrations/{integration['id']}/settings")
    errors = PageErrors(page)
    button = page.locator("button[data-copy=webhook_url]")
    button.click()
    expect(button).to_have_text("Выделено: нажмите Ctrl+C")
    expect(page.locator("#copy-status")).to_have_text("Выделено: нажмите Ctrl+C")
    selected = page.evaluate(
        "() => { const el = document.activeElement;"
        " return [el.id, el.value.slice(el.selectionStart, el.selectionEnd)]; }"
    )
    assert selected == ["webhook_url", page.input_value("#webhook_url")]
    expect(button).to_have_text("Копировать", timeout=5_000)
    assert errors.errors == []
    context.close()
