"""Every file under ticker/, book/, account/ and derivatives/ imports, or is refused clearly.

The table below is the outcome of each file: the importer that takes it and the rows it
adds per dataset (fewer than it reads where the file repeats a key: the Binance depth
update repeats 37 lines verbatim, the two position responses share updateTime). Three
files name no exchange: without --exchange they are refused with a message naming the
file and the flag; with it they import. A new file in these folders fails the listing
test until it is added here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.ingest import Hints, ingest_file, iter_files
from marketexport.store.duckdb import DuckDBStore

FOLDERS = ("account", "book", "derivatives", "ticker")
NEEDS_EXCHANGE = "needs --exchange"

# path -> (importer, {dataset: rows added}, note)
OUTCOMES: dict[str, tuple[str, dict[str, int], str]] = {
    "account/bbgo/btcusdt-trades.json": ("account-history-export", {"fills": 3432}, "slow"),
    "account/ccxt_static/binance_mytrades_excerpt.json": (
        "ccxt-static-binance",
        {"fills": 2},
        "",
    ),
    "account/ccxt_static/binance_orders_excerpt.json": ("ccxt-static-binance", {"orders": 3}, ""),
    "account/ccxt_static/binance_positions_linear_excerpt.json": (
        "ccxt-static-binance",
        {"positions": 2},
        "",
    ),
    **{
        f"account/coinbase_exchange/fills_BTC-USDT_page{n:02d}.json": (
            "coinbase-exchange-account",
            {"fills": 100},
            "",
        )
        for n in range(1, 8)
    },
    "account/coinbase_exchange/orders_done_BTC-USDT_page1.json": (
        "coinbase-exchange-account",
        {"orders": 100},
        "",
    ),
    "account/coinbase_exchange/orders_done_BTC-USDT_page2.json": (
        "coinbase-exchange-account",
        {"orders": 36},
        "",
    ),
    "account/coinbase_exchange/orders_done_BTC-USDT_page3.json": (
        "coinbase-exchange-account",
        {"orders": 33},
        "",
    ),
    "account/exchange_exports/rotki/bitstamp.csv": ("account-history-export", {"fills": 1}, ""),
    "account/exchange_exports/rotki/bittrex_order_history.csv": (
        "account-history-export",
        {"orders": 2},
        "",
    ),
    "account/exchange_exports/rotki/kucoin_order_history.csv": (
        "account-history-export",
        {"fills": 2},
        "",
    ),
    "book/binance_vision/um/BTCUSDT-bookDepth-2026-09-15.csv": (
        "binance-book",
        {"book_depth": 3},
        "",
    ),
    "book/binance_vision/um/BTCUSDT-bookTicker-2024-01-15.csv": ("binance-book", {"ticker": 3}, ""),
    "book/bybit/xrpusdt-ob500.data.zip": ("bybit-orderbook", {"orderbook": 3966}, ""),
    "book/cryptofeed/BINANCE_FUTURES.ws.1.0": (
        "websocket-capture",
        {"orderbook": 6297, "ticker": 613, "trades": 91, "ohlcv": 4},
        "slow",
    ),
    "book/hftbacktest/spot/btcusdt_20240808.gz": (
        "websocket-capture",
        {"orderbook": 126090, "ticker": 28040, "trades": 9757},
        "slow",
    ),
    "book/nautilus/btcusdt-depth-snap.csv": ("binance-book", {"orderbook": 100}, ""),
    "book/nautilus/btcusdt-depth-update.csv": ("binance-book", {"orderbook": 63}, ""),
    "book/nautilus/btcusdt-quotes.parquet": ("ticker-files", {"ticker": 451}, NEEDS_EXCHANGE),
    "book/tardis/binance-futures_book_snapshot_25_BTCUSDT.csv": (
        "tardis-book",
        {"orderbook": 500},
        "",
    ),
    "book/tardis/binance-futures_book_snapshot_5_BTCUSDT.csv": (
        "tardis-book",
        {"orderbook": 100},
        "",
    ),
    "book/tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv": (
        "tardis-book",
        {"orderbook": 15},
        "",
    ),
    "book/tardis/huobi-dm-swap_quotes_BTC-USD.csv": ("tardis-book", {"ticker": 10}, ""),
    "derivatives/binance_vision/um/BTCUSDT-metrics-2026-09-15.csv": (
        "derivatives-extras",
        {"open_interest": 2},
        "",
    ),
    "derivatives/freqtrade/XRP_USDT_USDT-1h-mark.feather": (
        "derivatives-extras",
        {"ohlcv": 100},
        NEEDS_EXCHANGE,
    ),
    "derivatives/freqtrade/XRP_USDT_USDT-8h-funding_rate.feather": (
        "derivatives-extras",
        {"funding": 91},
        NEEDS_EXCHANGE,
    ),
    "ticker/coinbase_exchange/ticker_BTC-USD.json": ("ticker-files", {"ticker": 1}, ""),
    "ticker/coinbase_exchange/ticker_ETH-BTC.json": ("ticker-files", {"ticker": 1}, ""),
    "ticker/coinbase_exchange/ticker_ETH-USD.json": ("ticker-files", {"ticker": 1}, ""),
    "ticker/cryptofeed/COINBASE.ws.28.0": (
        "websocket-capture",
        {"orderbook": 18081, "ticker": 107, "trades": 107},
        "slow",
    ),
}


def _cases() -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.slow) if note == "slow" else name
        for name, (_, _, note) in OUTCOMES.items()
    ]


def test_the_table_lists_every_file(real: Path) -> None:
    found = {str(path.relative_to(real)) for path in iter_files([real / f for f in FOLDERS])}

    assert found == set(OUTCOMES)


@pytest.mark.parametrize("name", _cases())
def test_each_file_imports_or_is_refused_clearly(real: Path, store: DuckDBStore, name: str) -> None:
    importer, added, note = OUTCOMES[name]
    path = real / name

    if note == NEEDS_EXCHANGE:
        refused = ingest_file(path, store, Hints())
        assert refused.error is not None and refused.importer == importer
        assert refused.error.startswith(f"{path}: ") and "--exchange" in refused.error
        assert refused.datasets == {}
    hints = Hints(exchange="binance" if note == NEEDS_EXCHANGE else None)
    report = ingest_file(path, store, hints)
    again = ingest_file(path, store, hints)

    assert report.error is None and report.importer == importer
    assert {name: counts["rows_added"] for name, counts in report.datasets.items()} == added
    assert all(counts["rows_added"] == 0 for counts in again.datasets.values())
