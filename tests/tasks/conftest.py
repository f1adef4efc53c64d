"""Fixtures for task tests: a synthetic candle store built in SQL, settings, a task store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from marketexport.config import Settings, load_settings
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.store import TaskStore

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


@pytest.fixture
def task_settings(tmp_path: Path) -> Settings:
    """Settings over a store of 20,000 candles, read in batches of 1,000 rows."""
    settings = make_settings(tmp_path, batch_rows=1000)
    build_candles(Path(settings.store_url), 20_000)
    return settings


@pytest.fixture
def tasks(task_settings: Settings) -> Iterator[TaskStore]:
    store = TaskStore.open(task_settings)
    yield store
    store.close()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []
