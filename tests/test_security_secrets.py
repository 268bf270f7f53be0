"""Secrets are encrypted at rest with ANALYTICS_HOST_KEY; without the right key the host stops."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from hooks.host import __main__ as cli
from hooks.host.app import create_app
from hooks.host.database import open_repository
from hooks.host.host_key import ENV, HostKeyError
from hooks.host.migrations import apply_migrations
from hooks.host.state import HostConfig
from tests.conftest import HOST_KEY
from tests.stack import PORTAL_URL, running_stack

pytestmark = pytest.mark.anyio

OTHER_KEY = Fernet.generate_key().decode()


def database_bytes(db: Path) -> bytes:
    """The database and its WAL, as anyone who copies the files gets them."""
    return b"".join(path.read_bytes() for path in db.parent.glob(f"{db.name}*"))


async def stored_with_secrets(db: Path) -> None:
    repo = await open_repository(str(db), key=HOST_KEY)
    integration = await repo.create_integration("b24_openlines", "Shop")
    await repo.update_integration(
        integration.id, expected_version=1, secrets={"client_secret": SecretStr("s3cr3t-value")}
    )
    await repo.close()


async def test_no_secret_in_the_database_files_and_the_key_reads_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    db = tmp_path / "host.sqlite3"
    async with running_stack(db) as stack:
        integration = await stack.configure()
        assert (await stack.connect(integration["id"])).status_code == 303
        await stack.chat(connector="livechat", messages=[{"author": "visitor", "text": "hi"}])
        assert len(await stack.appeals()) == 1
        stored = await stack.host.repo.get_integration(integration["id"])
        signing_key = await stack.host.repo.host_secret_key()
        assert stored is not None
        secrets = {name: value.get_secret_value() for name, value in stored.secrets.items()}
        assert {"client_secret", "access_token", "refresh_token", "application_token"} <= set(
            secrets
        )
        running = database_bytes(db)
    at_rest = database_bytes(db)
    for name, value in secrets.items():
        assert value.encode() not in running and value.encode() not in at_rest, name
    assert signing_key not in running and signing_key not in at_rest
    assert HOST_KEY.get_secret_value().encode() not in at_rest
    repo = await open_repository(str(db), key=HOST_KEY)
    again = await repo.get_integration(integration["id"])
    assert again is not None and again.secrets == stored.secrets
    assert await repo.host_secret_key() == signing_key
    await repo.close()


async def test_the_host_does_not_start_without_the_key(host_config: HostConfig) -> None:
    app = create_app(replace(host_config, host_key=None))
    with pytest.raises(HostKeyError, match=f"{ENV} is not set"):
        async with app.router.lifespan_context(app):
            pass


async def test_a_wrong_key_is_refused_at_start_not_read_as_garbage(tmp_path: Path) -> None:
    db = tmp_path / "host.sqlite3"
    await stored_with_secrets(db)
    with pytest.raises(HostKeyError, match="not the key"):
        await open_repository(str(db), key=SecretStr(OTHER_KEY))
    repo = await open_repository(str(db), key=HOST_KEY)  # the right key still works
    [integration] = await repo.list_integrations()
    assert integration.secrets["client_secret"].get_secret_value() == "s3cr3t-value"
    await repo.close()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, f"error: {ENV} is not set"),
        (OTHER_KEY, "not the key it was encrypted with"),
        ("an-old-password-1234", f"error: {ENV} is not a valid key"),
    ],
    ids=["missing", "wrong", "malformed"],
)
def test_the_command_line_stops_with_one_clear_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    served: list[Any],
    key: str | None,
    message: str,
) -> None:
    db = tmp_path / "host.sqlite3"
    asyncio.run(stored_with_secrets(db))
    if key is not None:
        monkeypatch.setenv(ENV, key)
    assert cli.main(["--db", str(db)]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err
    assert key is None or key not in out + err
    assert served == [] and not Path(f"{db}.key").exists()


def test_demo_mode_keeps_a_key_beside_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], served: list[Any]
) -> None:
    db = tmp_path / "var" / "host.sqlite3"
    key_file = Path(f"{db}.key")
    assert cli.main(["--demo", "--db", str(db)]) == 0 and len(served) == 1
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert str(key_file) in out and key not in out
    assert cli.main(["--demo", "--db", str(db)]) == 0  # the second start keeps the key
    assert key_file.read_text().strip() == key and len(served) == 2


def test_the_environment_key_wins_over_demo_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Any]
) -> None:
    monkeypatch.setenv(ENV, OTHER_KEY)
    db = tmp_path / "host.sqlite3"
    assert cli.main(["--demo", "--db", str(db)]) == 0
    assert not Path(f"{db}.key").exists()


async def test_a_database_from_before_encryption_is_encrypted_on_first_open(
    tmp_path: Path,
) -> None:
    db = tmp_path / "host.sqlite3"
    signing_key = b"k" * 32
    now = datetime.now(UTC).isoformat()
    with closing(sqlite3.connect(db, isolation_level=None)) as plain:
        apply_migrations(plain)
        plain.execute(
            "INSERT INTO integrations (plugin, name, secrets, webhook_token, created_at,"
            " updated_at) VALUES ('b24_openlines', 'Old', ?, 'tok', ?, ?)",
            (json.dumps({"client_secret": "legacy-secret-value"}), now, now),
        )
        plain.execute("INSERT INTO host_meta (key, value) VALUES ('secret_key', ?)", (signing_key,))
        plain.execute(
            "INSERT INTO webhook_inbox (integration_id, body_sha256, request, body, status,"
            " next_attempt_at, created_at, updated_at) VALUES (1, 'h', ?, ?, 'done', ?, ?, ?)",
            (
                json.dumps({"method": "POST", "path": "/webhooks/1/", "received_at": now}),
                b"auth[application_token]=legacy-app-token",
                now,
                now,
                now,
            ),
        )
    repo = await open_repository(str(db), key=HOST_KEY)
    [integration] = await repo.list_integrations()
    assert integration.secrets["client_secret"].get_secret_value() == "legacy-secret-value"
    assert await repo.host_secret_key() == signing_key  # states signed before still verify
    [item] = await repo.list_inbox()
    assert item.request.body == b"auth[application_token]=legacy-app-token"
    await repo.close()
    assert b"legacy-secret-value" not in database_bytes(db)
    assert b"legacy-app-token" not in database_bytes(db)
    assert signing_key not in database_bytes(db)
