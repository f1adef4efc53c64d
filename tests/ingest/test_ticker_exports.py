"""ticker: real quote and ticker files in, every value out in four formats.

Expected rows are read here with json, csv and pyarrow only, following SOURCES.md §6-7.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from marketexport.datasets import TICKER
from marketexport.ingest import Hints, ingest_file
from marketexport.store.duckdb import DuckDBStore
from tests.ingest.book_account_checks import (
    assert_exports_match,
    float_decimal,
    ingest,
    iso_ns,
    row_of,
)

MS, US = 1_000_000, 1000


def coinbase_tickers(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(folder.glob("ticker_*.json")):
        body = json.loads(path.read_text())
        product = path.stem.split("_")[1]
        rows.append(
            row_of(
                TICKER,
                exchange="coinbase",
                symbol=product.replace("-", "/"),
                time=iso_ns(body["time"]),
                seq=0,
                bid=Decimal(body["bid"]),
                ask=Decimal(body["ask"]),
                last=Decimal(body["price"]),
                last_size=Decimal(body["size"]),
                last_trade_id=str(body["trade_id"]),
                base_volume_24h=Decimal(body["volume"]),
            )
        )
    return rows


def tardis_quotes(path: Path) -> list[dict[str, Any]]:
    seen: Counter[str] = Counter()
    rows = []
    for raw in csv.DictReader(path.read_text().splitlines()):
        rows.append(
            row_of(
                TICKER,
                exchange="huobi",
                symbol="BTC/USD:BTC",
                time=int(raw["timestamp"]) * US,
                seq=seen[raw["timestamp"]],
                receive_time=int(raw["local_timestamp"]) * US,
                bid=Decimal(raw["bid_price"]),
                bid_size=Decimal(raw["bid_amount"]),
                ask=Decimal(raw["ask_price"]),
                ask_size=Decimal(raw["ask_amount"]),
            )
        )
        seen[raw["timestamp"]] += 1
    return rows


def binance_book_ticker(path: Path) -> list[dict[str, Any]]:
    seen: Counter[str] = Counter()
    rows = []
    for raw in csv.DictReader(path.read_text().splitlines()):
        rows.append(
            row_of(
                TICKER,
                exchange="binance",
                symbol="BTC/USDT:USDT",
                time=int(raw["transaction_time"]) * MS,
                seq=seen[raw["transaction_time"]],
                sequence=int(raw["update_id"]),
                bid=Decimal(raw["best_bid_price"]),
                bid_size=Decimal(raw["best_bid_qty"]),
                ask=Decimal(raw["best_ask_price"]),
                ask_size=Decimal(raw["best_ask_qty"]),
            )
        )
        seen[raw["transaction_time"]] += 1
    return rows


def nautilus_quotes(path: Path) -> list[dict[str, Any]]:
    """Floats at their shortest repr (rounded past 18 places); repeated times ranked."""
    table = pq.read_table(path)
    times_ms = pc.cast(table["timestamp"], pa.int64()).to_pylist()
    seen: Counter[int] = Counter()
    rows = []
    for time_ms, raw in zip(times_ms, table.to_pylist(), strict=True):
        rows.append(
            row_of(
                TICKER,
                exchange="binance",
                symbol=raw["symbol"],
                time=time_ms * MS,
                seq=seen[time_ms],
                **{
                    name: float_decimal(raw[name])
                    for name in ("bid", "bid_size", "ask", "ask_size")
                },
            )
        )
        seen[time_ms] += 1
    return rows


@pytest.mark.slow
def test_ticker_from_four_sources_exports_exactly(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    coinbase = real / "ticker" / "coinbase_exchange"
    quotes = real / "book" / "tardis" / "huobi-dm-swap_quotes_BTC-USD.csv"
    book_ticker = real / "book" / "binance_vision" / "um" / "BTCUSDT-bookTicker-2024-01-15.csv"
    parquet = real / "book" / "nautilus" / "btcusdt-quotes.parquet"
    expected = (
        coinbase_tickers(coinbase)
        + tardis_quotes(quotes)
        + binance_book_ticker(book_ticker)
        + nautilus_quotes(parquet)
    )

    ingest(store, *sorted(coinbase.glob("ticker_*.json")), quotes, book_ticker)
    ingest(store, parquet, exchange="binance")

    assert max(row["seq"] for row in expected) >= 1
    assert_exports_match(store, "ticker", expected, tmp_path, time_unit="ns")


def test_coinbase_ticker_keeps_nanoseconds(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    folder = real / "ticker" / "coinbase_exchange"
    expected = [row for row in coinbase_tickers(folder) if row["symbol"] == "ETH/USD"]

    ingest(store, folder / "ticker_ETH-USD.json")

    assert expected[0]["time"] % 1000 == 541
    assert_exports_match(store, "ticker", expected, tmp_path, time_unit="ns")


def test_quote_table_without_exchange_needs_the_flag(real: Path, store: DuckDBStore) -> None:
    parquet = real / "book" / "nautilus" / "btcusdt-quotes.parquet"

    refused = ingest_file(parquet, store, Hints())
    accepted = ingest_file(parquet, store, Hints(exchange="binance"))

    assert refused.error is not None
    assert str(parquet) in refused.error and "--exchange" in refused.error
    assert accepted.ok and accepted.datasets["ticker"]["rows_added"] == 451
