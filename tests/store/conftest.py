"""PostgreSQL fixtures: the server's URL, a schema of each test's own, stores on both sides."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from marketexport.config import Settings
from marketexport.store.duckdb import DuckDBStore

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def run_sql(url: str, sql: str, params: list[Any] | None = None) -> list[Any]:
    """One statement on a connection of its own (autocommit), rows returned."""
    from adbc_driver_postgresql import dbapi

    with dbapi.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test server (MARKETEXPORT_TEST_POSTGRES, default the local one), or a skip."""
    url = os.environ.get("MARKETEXPORT_TEST_POSTGRES", DEFAULT_URL)
    try:
        run_sql(url, "SELECT 1")
    except Exception as exc:  # the driver's error when no server answers
        pytest.skip(f"no PostgreSQL server at {url}: {str(exc).splitlines()[0]}")
    return url


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards, so tests can run side by side."""
    name = f"mx_test_{secrets.token_hex(4)}"
    run_sql(pg_url, f'CREATE SCHEMA "{name}"')
    yield name
    run_sql(pg_url, f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def pg_settings(settings: Settings, pg_url: str, pg_schema: str) -> Settings:
    return replace(settings, store=pg_url, postgres={"schema": pg_schema})


@pytest.fixture
def pg_store(pg_settings: Settings) -> Iterator[Any]:
    from marketexport.store.postgres import PostgresStore

    store = PostgresStore(str(pg_settings.store), settings=pg_settings)
    store.init_schema()
    yield store
    store.close()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "duck" / "store.duckdb")
    yield store
    store.close()
