"""No silent change (issue 12, item 5): partial settings go through PATCH, a PUT that would
clear what is set is refused, and the host never starts on a database it cannot write while its
pages still render on one that became read-only."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from hooks.host.app import create_app
from hooks.host.host_key import ENV, resolve_host_key
from hooks.host.state import HostConfig
from tests.conftest import HOST_KEY, PUBLIC_URL, RunningHost
from tests.test_host_api import VALID, create

pytestmark = pytest.mark.anyio


async def configured(rh: RunningHost) -> dict[str, Any]:
    data = await create(rh)
    saved = await rh.client.put(f"/api/integrations/{data['id']}/settings", json=VALID)
    assert saved.status_code == 200, saved.text
    assert saved.json()["settings"]["active"] is True
    return dict(saved.json())


async def stored(rh: RunningHost, integration_id: int) -> dict[str, Any]:
    answer = await rh.client.get(f"/api/integrations/{integration_id}")
    return dict(answer.json())


async def test_a_partial_put_on_an_active_integration_is_refused_and_changes_nothing(
    running_host: RunningHost,
) -> None:
    data = await configured(running_host)
    before = await stored(running_host, data["id"])
    answer = await running_host.client.put(
        f"/api/integrations/{data['id']}/settings", json={"portal": "other.bitrix24.ru"}
    )
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert {"active", "client_id", "employee_id", "source_id", "messenger_map"} <= set(errors)
    assert "portal" not in errors and "client_secret" not in errors  # sent; a secret is kept
    assert "PATCH" in errors["active"]
    assert await stored(running_host, data["id"]) == before


async def test_a_put_that_leaves_out_only_defaults_is_accepted(running_host: RunningHost) -> None:
    data = await configured(running_host)
    again = await running_host.client.put(f"/api/integrations/{data['id']}/settings", json=VALID)
    assert again.status_code == 200  # site_domains, tracker_getter, … left at their defaults


async def test_patch_changes_what_it_names_and_keeps_the_rest(running_host: RunningHost) -> None:
    data = await configured(running_host)
    url = f"/api/integrations/{data['id']}/settings"
    off = await running_host.client.patch(url, json={"active": False})
    assert off.status_code == 200, off.text
    settings = off.json()["settings"]
    assert settings["active"] is False
    assert settings["client_id"] == VALID["client_id"] and settings["source_id"] == 5
    assert settings["client_secret"] == data["settings"]["client_secret"]  # kept, masked

    merged = await running_host.client.patch(
        url, json={"messenger_map": {"viber": {"source_id": 6}}, "site_id": None}
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["settings"]["messenger_map"] == {
        "telegrambot": {"source_id": 4, "site_id": 1},
        "viber": {"source_id": 6},
    }
    assert merged.json()["settings"]["site_id"] is None  # null: back to the default


async def test_an_invalid_patch_saves_nothing(running_host: RunningHost) -> None:
    data = await configured(running_host)
    before = await stored(running_host, data["id"])
    url = f"/api/integrations/{data['id']}/settings"
    for body in ({"employee_id": None}, {"source_id": "x"}, {"unknown": 1}, ["active"]):
        answer = await running_host.client.patch(url, json=body)
        assert answer.status_code in (400, 422), (body, answer.text)
    assert await stored(running_host, data["id"]) == before


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """Files nobody may write, root included (``chattr +i``): what a read-only disk is."""
    done: list[Path] = []
    try:
        for path in paths:
            if path.exists():
                result = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
                if result.returncode != 0:
                    pytest.skip(f"chattr +i is not available here: {result.stderr.decode()}")
                done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=True)


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def start_host(db: str, *options: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m hooks.host`` as an operator starts it; it exits before serving here."""
    environment = {k: v for k, v in os.environ.items() if k != ENV}
    if key is not None:
        environment[ENV] = key
    return subprocess.run(
        [sys.executable, "-m", "hooks.host", "--db", db, "--port", "1", *options],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )


async def test_the_host_refuses_a_sqlite_database_it_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "data" / "host.sqlite3"
    key = resolve_host_key(str(db), demo=True)  # the key file ``--demo`` reads below
    app = create_app(HostConfig(db=str(db), public_url=PUBLIC_URL, worker="none", host_key=key))
    async with app.router.lifespan_context(app):
        pass  # a database with its schema, as a running host leaves it
    with immutable(*sqlite_files(db)):
        started = start_host(str(db), "--demo")
    assert started.returncode == 2
    assert started.stderr.strip().splitlines()[-1] == (
        f"error: the database {db} can be read but not written (a read-only file, folder or"
        " disk): the host must be able to write it"
    )
    assert "Traceback" not in started.stderr


async def test_the_host_refuses_a_read_only_postgresql_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                sql.Identifier(name)
            )
        )
    started = start_host(postgres_url, key=HOST_KEY.get_secret_value())
    assert started.returncode == 2
    assert started.stderr.strip().splitlines()[-1] == (
        "error: the PostgreSQL database can be read but not written (a standby, or read-only"
        " transactions by default): the host must be able to write it"
    )
    assert postgres_url not in started.stderr


async def test_pages_render_on_a_database_that_became_read_only(tmp_path: Path) -> None:
    db = tmp_path / "host.sqlite3"
    config = HostConfig(db=str(db), public_url=PUBLIC_URL, worker="none", host_key=HOST_KEY)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            rh = RunningHost(app, client, config)
            data = await configured(rh)
            pages = [
                "/",
                "/raw/appeals",
                "/inbox",
                f"/integrations/{data['id']}/settings",
                "/api/integrations",
                f"/api/integrations/{data['id']}",
                "/api/appeals",
                "/api/catalog",
            ]
            with immutable(*sqlite_files(db)):
                answers = {page: (await client.get(page)).status_code for page in pages}
    assert answers == dict.fromkeys(pages, 200)
