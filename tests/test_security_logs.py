"""No secret reaches a log: a whole connect → chat → refresh flow, every logger at DEBUG."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from uvicorn.logging import AccessFormatter

from hooks.host.app import create_app
from hooks.host.redact import (
    _MAY_HOLD_SECRET,
    _redact_each_spelling,
    install_log_redaction,
    redact,
)
from hooks.host.server import server_options
from hooks.host.state import HostConfig
from tests.conftest import HOST_KEY
from tests.stack import HOST_URL, PORTAL_URL, running_stack
from tests.uvicorn_server import send_raw, serving

pytestmark = pytest.mark.anyio


async def test_no_secret_in_any_log_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    caplog.set_level(logging.DEBUG)
    async with running_stack(tmp_path / "host.sqlite3") as stack:
        integration = await stack.configure()
        connected = await stack.connect(integration["id"])
        assert connected.status_code == 303, connected.text
        before = await stack.host.repo.get_integration(integration["id"])
        await stack.chat(connector="livechat", messages=[{"author": "visitor", "text": "hi"}])
        stack.clock.advance(3601)  # the access token has expired: the next chat refreshes it
        await stack.chat(connector="telegrambot", messages=[{"author": "visitor", "text": "yo"}])
        assert len(await stack.appeals()) == 2
        after = await stack.host.repo.get_integration(integration["id"])
        for path in ("/", f"/integrations/{integration['id']}/settings", "/inbox"):
            page = await stack.browser.get(f"{HOST_URL}{path}")
            assert HOST_KEY.get_secret_value() not in page.text
    assert before is not None and after is not None
    secrets = {
        name: value.get_secret_value()
        for stored in (before, after)
        for name, value in stored.secrets.items()
    }
    assert {"client_secret", "access_token", "refresh_token", "application_token"} <= set(secrets)
    secrets["host key"] = HOST_KEY.get_secret_value()
    secrets["webhook token"] = after.webhook_token.get_secret_value()
    assert caplog.records, "the flow logged nothing: the test would prove nothing"
    for record in caplog.records:
        text = logging.Formatter().format(record)
        leaked = [name for name, value in secrets.items() if value in text]
        assert not leaked, f"{leaked} in a log record of {record.name}: {text[:300]}"


def record(message: str, *args: object, exc_info: Any = None) -> logging.LogRecord:
    install_log_redaction()
    logger = logging.getLogger("uvicorn.access")
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, args, exc_info)


def test_the_access_log_keeps_its_format_but_not_the_webhook_token() -> None:
    access = record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "POST",
        "/webhooks/3/s3cr3t-token?via=app",
        "1.1",
        200,
    )
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(access)
    assert line == '127.0.0.1:5000 - "POST /webhooks/3/***?via=app HTTP/1.1" 200 OK'


# Text made of pieces of secrets' spellings, so that most examples come near one: a Webhook
# URL's path (its slashes as they are, percent-encoded, or doubled), names with "=" or as JSON,
# escapes of "=" and of a letter, one escaped twice, the Kelvin sign (a "k" to ``(?i)``).
_PIECES = [
    *("=", '"', ":", " ", "%", "/", "?", "&", "\n", "x", "1/", "2f", "2F"),
    *("/webhooks/", "/WebHooks%2F", "/%77ebhoo\u212as/", "webhooks", "//"),
    *("token", "auth", "code=", "?auth=", "&client%5Fsecret", '"access_token"', ': "'),
    *("%3D", "%253D", "%41"),
]
_NEAR_SECRETS = st.lists(st.sampled_from(_PIECES) | st.text(max_size=3), max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(_NEAR_SECRETS)
@example("/webhooks/1/s3cr3t")
@example("/WEBHOO\u212aS%2f1%2Fs3cr3t")
@example("token%3Ds3cr3t")
@example('{"access_token" : "s3cr3t"}')
@example("a?auth=s3cr3t")
def test_text_let_through_unsearched_is_text_without_a_secret(text: str) -> None:
    """``redact`` skips the patterns for a text without what they need: skipping never changes
    what comes out."""
    assert redact(text) == _redact_each_spelling(text)


def test_plain_log_arguments_skip_the_patterns() -> None:
    """What most records carry (an address, a method, a status, a format string) takes the
    shortcut: a trigger as wide as ``%`` or ``:`` would send every record through the patterns."""
    for text in ("127.0.0.1:5000", "POST", "1.1", "200", '%s - "%s %s HTTP/%s" %d'):
        assert _MAY_HOLD_SECRET.search(text) is None and redact(text) == text


def test_a_logged_exception_loses_its_credentials() -> None:
    try:
        raise RuntimeError("400 for https://oauth.example/token/?client_secret=s3cr3t&code=c0de")
    except RuntimeError:
        failure = record("refresh failed", exc_info=sys.exc_info())
    text = logging.Formatter().format(failure)
    assert "s3cr3t" not in text and "c0de" not in text and "client_secret=***" in text


async def test_a_webhook_path_however_it_is_spelt_never_logs_its_token(
    host_config: HostConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Over a real server, with uvicorn's own access log: the path written as a client may
    write it (percent-encoded, another spelling of the id) is the one that is logged."""
    caplog.set_level(logging.INFO)
    app = create_app(host_config)
    async with serving(app, **server_options()) as address:
        integration = await app.state.host.repo.create_integration("b24_openlines", "Shop")
        token = integration.webhook_token.get_secret_value()
        encoded = "".join(f"%{byte:02X}" for byte in token.encode())
        spellings = [
            f"/webhooks/{integration.id}/{token}",
            f"/webhooks/%D9%A1/{token}",  # an Arabic-Indic one
            f"/webhooks/%C2%B2/{token}",  # a superscript two
            f"/webhooks/{integration.id}/{encoded}",
            f"/%77ebhooks/{integration.id}/{token}",
            f"/webhooks%2F{integration.id}%2F{token}",
            f"/webhooks/{integration.id}%2f{token}?via=app",
        ]
        for path in spellings:
            request = f"POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
            await send_raw(address, f"{request}Connection: close\r\n\r\nx".encode())
    access = [record for record in caplog.records if record.name == "uvicorn.access"]
    assert len(access) == len(spellings)
    for record in caplog.records:
        text = logging.Formatter().format(record)
        assert token not in text and token[:12] not in text, text
