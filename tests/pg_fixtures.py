"""PostgreSQL for the tests: one throwaway server per test session, a fresh database per test.

Registered from ``tests/conftest.py`` (``pytest_plugins``). The server starts only when a test
asks for it (about a second: ``initdb`` and start), and a test that asks for it fails, never
skips, when it cannot be had.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.postgres_server import PostgresServer

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server in a temporary directory, for the whole test session."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop(mode="immediate")  # nothing in it is kept: skip the checkpoint


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database of its own for this test."""
    return postgres_server.create_database(f"test_{next(_database_numbers)}")
