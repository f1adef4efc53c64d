"""funding, open_interest and mark-price ohlcv: real files in, every value out.

Expected rows are read here with pyarrow and csv only, following SOURCES.md §1.4 and §3.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from marketexport.datasets import FUNDING, OHLCV, OPEN_INTEREST
from marketexport.ingest import Hints, ingest_file
from marketexport.store.duckdb import DuckDBStore
from tests.ingest.book_account_checks import (
    assert_exports_match,
    float_decimal,
    ingest,
    iso_ns,
    row_of,
)


def _feather_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    table = feather.read_table(path)
    times = pc.cast(table["date"], pa.int64()).to_pylist()
    assert table["date"].type.unit == "ns"
    return list(zip(times, table.to_pylist(), strict=True))


def test_funding_rates_export_exactly(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    path = real / "derivatives" / "freqtrade" / "XRP_USDT_USDT-8h-funding_rate.feather"
    expected = [
        row_of(
            FUNDING,
            exchange="binance",
            symbol="XRP/USDT:USDT",
            time=time_ns,
            rate=float_decimal(raw["open"]),
            interval_hours=8,
        )
        for time_ns, raw in _feather_rows(path)
    ]

    ingest(store, path, exchange="binance")

    # The funding times keep Binance's millisecond jitter (00:00:00.017...).
    assert len(expected) == 91 and expected[0]["time"] % 1_000_000_000 == 17_000_000
    assert_exports_match(store, "funding", expected, tmp_path, time_unit="ms")


def test_mark_price_candles_go_to_ohlcv(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    path = real / "derivatives" / "freqtrade" / "XRP_USDT_USDT-1h-mark.feather"
    expected = [
        row_of(
            OHLCV,
            exchange="binance",
            symbol="XRP/USDT:USDT",
            timeframe="1h",
            price_type="mark",
            time=time_ns,
            volume=None,
            **{name: float_decimal(raw[name]) for name in ("open", "high", "low", "close")},
        )
        for time_ns, raw in _feather_rows(path)
    ]

    ingest(store, path, exchange="binance")

    assert len(expected) == 100
    assert_exports_match(
        store, "ohlcv", expected, tmp_path, time_unit="ms", where=["price_type = mark"]
    )


def test_open_interest_metrics_export_exactly(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    path = real / "derivatives" / "binance_vision" / "um" / "BTCUSDT-metrics-2026-09-15.csv"
    ratios = (
        "count_toptrader_long_short_ratio",
        "sum_toptrader_long_short_ratio",
        "count_long_short_ratio",
        "sum_taker_long_short_vol_ratio",
    )
    expected = [
        row_of(
            OPEN_INTEREST,
            exchange="binance",
            symbol="BTC/USDT:USDT",
            time=iso_ns(raw["create_time"].replace(" ", "T") + "Z"),
            open_interest=Decimal(raw["sum_open_interest"]),
            open_interest_value=Decimal(raw["sum_open_interest_value"]),
            **{name: Decimal(raw[name]) for name in ratios},
        )
        for raw in csv.DictReader(path.read_text().splitlines())
    ]

    ingest(store, path)

    assert_exports_match(store, "open_interest", expected, tmp_path, time_unit="ms")


def test_freqtrade_files_need_the_exchange(real: Path, store: DuckDBStore) -> None:
    path = real / "derivatives" / "freqtrade" / "XRP_USDT_USDT-8h-funding_rate.feather"

    report = ingest_file(path, store, Hints())

    assert report.error is not None
    assert str(path) in report.error and "--exchange" in report.error
    assert store.count(FUNDING) == 0
