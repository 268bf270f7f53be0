"""The host's one storage setting, a database URL, and the repository it names.

A plain path, ``:memory:`` or a ``sqlite:///`` URL is the embedded SQLite database
(``hooks.host.sqlite``); a ``postgresql://`` (or ``postgres://``) URL is PostgreSQL
(``hooks.host.postgres``), for several host processes and workers on several machines.
Each implementation is imported only when it is opened, so a SQLite host never loads the
PostgreSQL driver.

Error messages name the scheme at most: the rest of a URL may hold a password.
"""

from __future__ import annotations

from pydantic import SecretStr

from hooks.host.repository import Repository

MEMORY = ":memory:"
POSTGRES_SCHEMES = ("postgresql", "postgres")


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened; the message never holds the URL."""


class DatabaseReadOnly(DatabaseUnavailable):
    """The database can be read but not written: the host would accept webhooks it cannot
    keep, so it does not start (the message never holds the URL)."""


def _scheme(url: str) -> str | None:
    scheme, separator, _ = url.partition("://")
    return scheme.lower() if separator else None


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return _scheme(url) in POSTGRES_SCHEMES


def sqlite_path(url: str) -> str:
    """The file (or ``:memory:``) a SQLite database URL names: a plain path, ``:memory:``,
    ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's convention:
    the path starts after the third slash); ``sqlite://`` alone is ``:memory:``."""
    scheme = _scheme(url)
    if scheme is None:
        return url
    if scheme == "sqlite":
        rest = url.partition("://")[2]
        if rest == "":
            return MEMORY
        if not rest.startswith("/"):
            raise ValueError("a SQLite URL has no host: write sqlite:///path/to/file.db")
        return rest[1:] or MEMORY
    if scheme in POSTGRES_SCHEMES:
        raise ValueError("a PostgreSQL URL names no SQLite file")
    if scheme.startswith("postgresql+"):
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}: write postgresql:// without a driver"
        )
    raise ValueError(
        f"unsupported database URL scheme {scheme!r}: use a SQLite path or a postgresql:// URL"
    )


async def open_repository(url: str, *, key: SecretStr | None) -> Repository:
    """Open the repository a database URL names, with the key that encrypts its secrets
    (``HostKeyError`` if it is missing or not this database's; ``DatabaseUnavailable`` if a
    PostgreSQL server cannot be reached; ``ValueError`` for a URL of another kind)."""
    if is_postgres(url):
        from hooks.host.postgres import PostgresRepository

        return await PostgresRepository.open(url, key=key)
    from hooks.host.sqlite import SqliteRepository

    return await SqliteRepository.open(sqlite_path(url), key=key)
