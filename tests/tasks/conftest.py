"""Fixtures for task tests: a synthetic candle store built in SQL, settings, a task store.

Task stores come in two kinds (``task_store_where``): the SQLite file of the data
directory, and a PostgreSQL schema of the test's own in the database ``mx_taskstore_test``
(made once through the server's ``test`` database; the PostgreSQL cases are marked
``postgres``). A test that takes ``task_settings``, ``tasks`` or ``task_store_where`` runs
once with each.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pytest

from marketexport.config import Settings, load_settings
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.store import TaskStore

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TASK_DB = "mx_taskstore_test"
T0_NS = 1_700_000_000_000_000_000
MINUTE_NS = 60_000_000_000


def build_candles(path: Path, rows: int, symbols: tuple[str, ...] = ("BTC/USDT",)) -> None:
    """Fill a DuckDB store with ``rows`` one-minute candles per symbol, in one SQL statement."""
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    try:
        for symbol in symbols:
            con.execute(
                "INSERT INTO ohlcv SELECT 'binance', ?, '1m', 'trade', "
                f"make_timestamp_ns({T0_NS} + i * {MINUTE_NS}), "
                "CAST(90000 + (i % 1000) * 0.01 AS DECIMAL(38, 18)), "
                "CAST(90010.5 AS DECIMAL(38, 18)), CAST(0.00001234 AS DECIMAL(38, 18)), "
                "CAST(75036192.45844001 AS DECIMAL(38, 18)), "
                "CAST((i % 1000) * 0.00001 AS DECIMAL(38, 18)), NULL, i % 5000, NULL, NULL "
                "FROM range(?) t(i)",
                [symbol, rows],
            ).fetchall()
    finally:
        con.close()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path / "data"}
    values.update(overrides)
    return load_settings(values, environ={})


def with_database(url: str, database: str, schema: str | None = None) -> str:
    """The server's URL naming another database, and a search path when given."""
    parts = urlsplit(url)
    query = parts.query
    if schema is not None:
        query = "&".join(filter(None, [query, f"options=-csearch_path%3D{schema}"]))
    return urlunsplit(parts._replace(path="/" + database, query=query))


def run_admin(url: str, sql: str) -> list[tuple[object, ...]]:
    """One statement on a connection of its own (autocommit), rows returned."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as con:
        cursor = con.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="session")
def task_db() -> str:
    """The URL of the tests' task store database (created when missing), or a skip."""
    import psycopg

    server = os.environ.get("MARKETEXPORT_TEST_POSTGRES", DEFAULT_POSTGRES)
    exists = f"SELECT 1 FROM pg_database WHERE datname = '{TASK_DB}'"
    try:
        if not run_admin(server, exists):
            run_admin(server, f'CREATE DATABASE "{TASK_DB}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {server}: {str(exc).splitlines()[0]}")
    except psycopg.Error:  # another test run created it at the same moment
        assert run_admin(server, exists)
    return with_database(server, TASK_DB)


@pytest.fixture
def pg_task_store(task_db: str) -> Iterator[str]:
    """A postgresql:// task store URL whose tables go to a fresh schema, dropped afterwards."""
    schema = f"mx_ts_{secrets.token_hex(5)}"
    run_admin(task_db, f'CREATE SCHEMA "{schema}"')
    yield with_database(task_db, TASK_DB, schema)
    run_admin(task_db, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def task_store_where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's task store lives: the data directory's SQLite file, or a URL."""
    if request.param == "sqlite":
        return tmp_path / "data" / "tasks.sqlite3"
    url: str = request.getfixturevalue("pg_task_store")
    return url


def store_setting(where: Path | str) -> dict[str, str]:
    """The task_store setting for ``where`` (none for the data directory's own file)."""
    return {"task_store": where} if isinstance(where, str) else {}


@pytest.fixture
def task_settings(tmp_path: Path, task_store_where: Path | str) -> Settings:
    """Settings over a store of 20,000 candles, read in batches of 1,000 rows."""
    settings = make_settings(tmp_path, batch_rows=1000, **store_setting(task_store_where))
    build_candles(Path(settings.store_url), 20_000)
    return settings


@pytest.fixture
def tasks(task_settings: Settings) -> Iterator[TaskStore]:
    store = TaskStore.open(task_settings)
    yield store
    store.close()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []
