"""A real Chromium (Debian's) driven by Playwright, against the host and the sandbox as servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.servers import Servers, running_servers

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        # Not a skip: the browser tests are part of the suite (.ci/run installs Chromium).
        pytest.fail(
            "Chromium is not installed: apt-get install chromium (the browser tests need it)"
        )
    return found


@pytest.fixture
def browser() -> Iterator[Browser]:
    """One browser per test: Playwright's sync API must be gone before async tests run."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageErrors:
    """Uncaught JavaScript errors and console errors of a page, to assert there are none."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="ru-RU")
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    with running_servers(tmp_path / "host.sqlite3") as running:
        yield running
