"""Recorded websocket captures: every message becomes the rows it should, exactly.

Expected rows are read here with gzip and json only, following SOURCES.md §6-7.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from marketexport.datasets import OHLCV, ORDERBOOK, TICKER, TRADES
from marketexport.ingest import Hints, ingest_file
from marketexport.store.duckdb import DuckDBStore
from tests.ingest.book_account_checks import assert_exports_match, ingest, iso_ns, row_of

MS = 1_000_000
Rows = dict[str, list[dict[str, Any]]]


def _feed_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(receive ns, message) of a cryptofeed capture's received lines."""
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("wss://"):
            continue
        stamp, text = line.split(": ", 1)
        out.append((int(Decimal(stamp) * 1_000_000_000), json.loads(text)))
    return out


def _book_rows(
    base: dict[str, Any], bids: list[Any], asks: list[Any], snapshot: bool
) -> list[dict[str, Any]]:
    rows = []
    for side, levels in (("bid", bids), ("ask", asks)):
        for level, (price, amount) in enumerate(levels):
            kind = "snapshot" if snapshot else ("delete" if Decimal(amount) == 0 else "set")
            rows.append(
                row_of(
                    ORDERBOOK,
                    **base,
                    update_type=kind,
                    side=side,
                    price=Decimal(price),
                    amount=Decimal(amount),
                    level=level if snapshot else None,
                )
            )
    return rows


def binance_futures_capture(path: Path) -> Rows:
    rows: Rows = {"orderbook": [], "ticker": [], "trades": [], "ohlcv": []}
    seen: Counter[tuple[str, str, int]] = Counter()
    for receive_ns, message in _feed_lines(path):
        data = message["data"]
        symbol = data["s"][:-4] + "/USDT:USDT"
        if data["e"] in ("depthUpdate", "bookTicker"):
            time_ns = data["T"] * MS
            key = (data["e"], symbol, time_ns)
            base = {"exchange": "binance", "symbol": symbol, "time": time_ns, "seq": seen[key]}
            seen[key] += 1
            if data["e"] == "depthUpdate":
                base.update(sequence=data["u"], first_sequence=data["U"], prev_sequence=data["pu"])
                base["receive_time"] = receive_ns
                rows["orderbook"] += _book_rows(base, data["b"], data["a"], snapshot=False)
                continue
            rows["ticker"].append(
                row_of(
                    TICKER,
                    **base,
                    sequence=data["u"],
                    receive_time=receive_ns,
                    bid=Decimal(data["b"]),
                    bid_size=Decimal(data["B"]),
                    ask=Decimal(data["a"]),
                    ask_size=Decimal(data["A"]),
                )
            )
        elif data["e"] == "aggTrade":
            rows["trades"].append(
                row_of(
                    TRADES,
                    exchange="binance",
                    symbol=symbol,
                    time=data["T"] * MS,
                    trade_id=str(data["a"]),
                    side="sell" if data["m"] else "buy",
                    price=Decimal(data["p"]),
                    amount=Decimal(data["q"]),
                    is_buyer_maker=data["m"],
                    aggregated=True,
                    first_trade_id=data["f"],
                    last_trade_id=data["l"],
                )
            )
        elif data["e"] == "kline" and data["k"]["x"]:
            candle = data["k"]
            rows["ohlcv"].append(
                row_of(
                    OHLCV,
                    exchange="binance",
                    symbol=symbol,
                    timeframe=candle["i"],
                    price_type="trade",
                    time=candle["t"] * MS,
                    open=Decimal(candle["o"]),
                    high=Decimal(candle["h"]),
                    low=Decimal(candle["l"]),
                    close=Decimal(candle["c"]),
                    volume=Decimal(candle["v"]),
                    quote_volume=Decimal(candle["q"]),
                    trades=candle["n"],
                    taker_buy_volume=Decimal(candle["V"]),
                    taker_buy_quote_volume=Decimal(candle["Q"]),
                )
            )
    return rows


@pytest.mark.slow
def test_cryptofeed_binance_futures_capture(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    path = real / "book" / "cryptofeed" / "BINANCE_FUTURES.ws.1.0"
    expected = binance_futures_capture(path)

    counts = ingest(store, path)

    assert {name: c["rows_added"] for name, c in counts.items()} == {
        name: len(rows) for name, rows in expected.items()
    }
    assert len(expected["ohlcv"]) == 4 and len(expected["ticker"]) == 613
    for dataset, rows in expected.items():
        assert_exports_match(store, dataset, rows, tmp_path / dataset)


def coinbase_capture(path: Path) -> Rows:
    rows: Rows = {"orderbook": [], "ticker": [], "trades": []}
    seen: Counter[tuple[str, str, int]] = Counter()
    for receive_ns, message in _feed_lines(path):
        kind = message["type"]
        if kind == "subscriptions":
            continue
        symbol = message["product_id"].replace("-", "/")
        time_ns = iso_ns(message["time"]) if message.get("time") else receive_ns
        if kind in ("snapshot", "l2update", "ticker"):
            key = ("ticker" if kind == "ticker" else "book", symbol, time_ns)
            base = {"exchange": "coinbase", "symbol": symbol, "time": time_ns, "seq": seen[key]}
            seen[key] += 1
        if kind == "snapshot":
            base["receive_time"] = receive_ns
            rows["orderbook"] += _book_rows(base, message["bids"], message["asks"], True)
        elif kind == "l2update":
            base["receive_time"] = receive_ns
            changes = message["changes"]
            bids = [change[1:] for change in changes if change[0] == "buy"]
            asks = [change[1:] for change in changes if change[0] == "sell"]
            rows["orderbook"] += _book_rows(base, bids, asks, snapshot=False)
        elif kind == "ticker":
            rows["ticker"].append(
                row_of(
                    TICKER,
                    **base,
                    sequence=message["sequence"],
                    receive_time=receive_ns,
                    bid=Decimal(message["best_bid"]),
                    ask=Decimal(message["best_ask"]),
                    last=Decimal(message["price"]),
                    last_size=Decimal(message["last_size"]),
                    last_side=message["side"],
                    last_trade_id=str(message["trade_id"]),
                    open_24h=Decimal(message["open_24h"]),
                    high_24h=Decimal(message["high_24h"]),
                    low_24h=Decimal(message["low_24h"]),
                    base_volume_24h=Decimal(message["volume_24h"]),
                )
            )
        else:
            assert kind in ("match", "last_match")
            rows["trades"].append(
                row_of(
                    TRADES,
                    exchange="coinbase",
                    symbol=symbol,
                    time=time_ns,
                    trade_id=str(message["trade_id"]),
                    # Coinbase names the maker's side; the taker took the other one.
                    side="sell" if message["side"] == "buy" else "buy",
                    price=Decimal(message["price"]),
                    amount=Decimal(message["size"]),
                    is_buyer_maker=message["side"] == "buy",
                    aggregated=False,
                )
            )
    return rows


@pytest.mark.slow
def test_cryptofeed_coinbase_capture(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    """Updates sharing a microsecond stay apart (seq); last_match repeats a match."""
    path = real / "ticker" / "cryptofeed" / "COINBASE.ws.28.0"
    expected = coinbase_capture(path)
    unique_trades = {row["trade_id"]: row for row in expected["trades"]}
    expected["trades"] = list(unique_trades.values())

    counts = ingest(store, path)

    assert counts["orderbook"]["rows_added"] == len(expected["orderbook"]) == 18081
    assert max(row["seq"] for row in expected["orderbook"]) >= 1
    assert counts["ticker"]["rows_added"] == 107
    for dataset, rows in expected.items():
        assert_exports_match(store, dataset, rows, tmp_path / dataset)


@pytest.mark.slow
def test_hftbacktest_capture(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    """Spot bookTicker has no time: those quotes take the recorder's nanosecond clock."""
    path = real / "book" / "hftbacktest" / "spot" / "btcusdt_20240808.gz"
    levels = quotes = trades = 0
    tickers = []
    seen: Counter[int] = Counter()
    with gzip.open(path, "rt") as handle:
        for line in handle:
            stamp, text = line.split(" ", 1)
            message = json.loads(text)
            if "lastUpdateId" in message:
                levels += len(message["bids"]) + len(message["asks"])
                continue
            data = message["data"]
            if message["stream"].endswith("@depth@100ms"):
                levels += len(data["b"]) + len(data["a"])
            elif message["stream"].endswith("@trade"):
                trades += 1
            else:
                quotes += 1
                tickers.append(
                    row_of(
                        TICKER,
                        exchange="binance",
                        symbol="BTC/USDT",
                        time=int(stamp),
                        seq=seen[int(stamp)],
                        sequence=data["u"],
                        receive_time=int(stamp),
                        bid=Decimal(data["b"]),
                        bid_size=Decimal(data["B"]),
                        ask=Decimal(data["a"]),
                        ask_size=Decimal(data["A"]),
                    )
                )
                seen[int(stamp)] += 1

    counts = ingest(store, path)

    assert (quotes, trades) == (28040, 9757)
    assert {name: c["rows_added"] for name, c in counts.items()} == {
        "orderbook": levels,
        "ticker": quotes,
        "trades": trades,
    }
    # Every format was checked on other files; one suffices for these 28,040 quotes.
    assert_exports_match(
        store, "ticker", tickers, tmp_path, time_unit="ns", formats=(("jsonl", "lz4"),)
    )


def test_capture_with_an_unknown_stream_imports_nothing(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    source = real / "book" / "cryptofeed" / "BINANCE_FUTURES.ws.1.0"
    lines = source.read_text().splitlines()[:40]
    bad = '1626992799.5: {"stream":"sushiusdt@markPrice","data":{"e":"markPriceUpdate"}}'
    path = tmp_path / "BINANCE_FUTURES.ws.9.0"
    path.write_text("\n".join([*lines, bad]) + "\n")

    report = ingest_file(path, store, Hints())

    assert report.error is not None
    assert f"{path}, line 41" in report.error and "sushiusdt@markPrice" in report.error
    assert all(store.count(spec) == 0 for spec in (ORDERBOOK, TICKER, TRADES, OHLCV))
