"""A selection whose times span more than 64-bit nanoseconds can count (1677 to 2262) is read
in windows like any other: the bucket arithmetic runs in 128 bits."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.datasets import OHLCV
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store import duckdb as duckdb_store
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import table_of

FIRST_NS = -(2**63) + 10**9  # 1677-09-21T00:12:44.145224192Z
LAST_NS = 2**63 - 10**9  # 2262-04-11T23:47:15.854775808Z


def _candle(time_ns: int) -> dict[str, object]:
    return {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m",
            "price_type": "trade", "time": time_ns, "open": "1", "high": "2", "low": "0.5",
            "close": "1.5", "volume": "3"}  # fmt: skip


def test_times_from_1677_to_2262_are_exported_in_windows(
    store: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = [FIRST_NS, *(1_700_000_000_000_000_000 + i * 60 * 10**9 for i in range(10)), LAST_NS]
    store.insert([(OHLCV, table_of(OHLCV, [_candle(t) for t in times]).to_batches())])
    monkeypatch.setattr(duckdb_store, "WINDOW_ROWS", 4)  # windows even for 12 rows

    result = run_export(build_request(dataset="ohlcv", format="csv"), store, output_dir=tmp_path)

    assert result.manifest.rows == len(times)
    assert result.manifest.first_time == "1677-09-21T00:12:44.145224192Z"
    assert result.manifest.last_time == "2262-04-11T23:47:15.854775808Z"
    assert verify_export(result.path).ok
