"""The host key (``ANALYTICS_HOST_KEY``): it encrypts the secrets kept in the database.

Client secrets and Bitrix24 tokens are worth more than the rest of the data, and database files
travel (backups, copies for debugging): without the key they are useless. The key is a Fernet
key; it is never stored beside the data except in demo mode, where a key file next to the
database keeps ``make run`` a one-command start.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from hooks.host.private_files import FILE_MODE, private_folder, tighten_file

ENV = "ANALYTICS_HOST_KEY"
MAKE_ONE = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class HostKeyError(Exception):
    """The key is missing, malformed or not the database's: the host must not start."""


def cipher(key: SecretStr | None) -> Fernet:
    if key is None:
        raise HostKeyError(
            f"{ENV} is not set: it encrypts the secrets in the database. Make one with {MAKE_ONE}"
            " and keep it safe, or run with --demo to keep a key beside the database"
        )
    try:
        return Fernet(key.get_secret_value())
    except ValueError:
        # ``from None``: the underlying error must not carry any part of the key into a log.
        raise HostKeyError(
            f"{ENV} is not a valid key (32 url-safe base64-encoded bytes): make one with {MAKE_ONE}"
        ) from None


def demo_key(key_file: Path) -> tuple[SecretStr, bool]:
    """The key kept in ``key_file`` (owner-only, in an owner-only folder), made on first use;
    and whether it was made now."""
    private_folder(key_file.parent)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten_file(key_file)  # one kept by an older version may be readable by others
        return SecretStr(key_file.read_text(encoding="ascii").strip()), False
    key = Fernet.generate_key().decode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
    return SecretStr(key), True


def resolve_host_key(db: str, *, demo: bool) -> SecretStr | None:
    """``ANALYTICS_HOST_KEY``; in demo mode without it, the key kept beside the SQLite database
    (made on first start). ``None`` when there is none: opening the database says so."""
    from hooks.host.database import MEMORY, is_postgres, sqlite_path

    if value := os.environ.get(ENV):
        return SecretStr(value)
    if not demo:
        return None
    if is_postgres(db):
        raise HostKeyError(f"--demo keeps its key beside a SQLite file: with PostgreSQL set {ENV}")
    path = sqlite_path(db)
    if path == MEMORY:
        print("Demo mode: the secrets are encrypted with a key made for this run", flush=True)
        return SecretStr(Fernet.generate_key().decode())
    key_file = Path(f"{path}.key")
    key, made = demo_key(key_file)
    print(
        f"Demo mode: the secrets are encrypted with the key {'made now in' if made else 'in'}"
        f" {key_file}; set {ENV} instead outside demos",
        flush=True,
    )
    return key
