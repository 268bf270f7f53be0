"""The database, its WAL and the demo key file are the owner's alone, in a folder of the owner's."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hooks.host import __main__ as cli
from hooks.host.database import open_repository
from hooks.host.host_key import resolve_host_key

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most machines have (022), whatever this one's is: files would be 0644."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def data_files(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.key")]


async def test_a_new_database_its_wal_and_its_key_file_are_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "var" / "host.sqlite3"
    repo = await open_repository(str(db), key=resolve_host_key(str(db), demo=True))
    try:
        await repo.create_integration("b24_openlines", "Shop")  # the WAL is written and open
        modes = {path.name: mode(path) for path in data_files(db)}
    finally:
        await repo.close()
    assert modes == {path.name: 0o600 for path in data_files(db)}
    assert mode(db.parent) == 0o700


async def test_files_and_a_folder_made_before_with_wider_modes_are_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "var"
    folder.mkdir(mode=0o755)
    db = folder / "host.sqlite3"
    for path in data_files(db)[:3]:
        path.touch(mode=0o644)
    repo = await open_repository(str(db), key=resolve_host_key(str(db), demo=True))
    await repo.close()
    key_file = data_files(db)[3]
    key_file.chmod(0o644)
    resolve_host_key(str(db), demo=True)
    assert {path.name: mode(path) for path in data_files(db) if path.exists()} == {
        path.name: 0o600 for path in data_files(db) if path.exists()
    }
    assert db.exists() and key_file.exists() and mode(folder) == 0o700
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{folder} owner-only" in line for line in said)
    assert any(f"{key_file} owner-only" in line for line in said)


@pytest.mark.parametrize("shared", [0o1777, 0o775], ids=["like /tmp", "a group's"])
def test_the_host_refuses_a_folder_others_may_write_to_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], served: list[Any], shared: int
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(shared)
    assert cli.main(["--demo", "--db", str(folder / "host.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert f"error: the folder {folder} is shared" in err and "Traceback" not in err
    assert served == [] and list(folder.iterdir()) == [] and mode(folder) == shared
