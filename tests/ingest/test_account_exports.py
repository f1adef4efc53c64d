"""orders, fills and positions: real account files in, every value out in four formats.

Expected rows are read here with json and csv only, following SOURCES.md §8.
"""

from __future__ import annotations

import csv
import hashlib
import json
from calendar import timegm
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from marketexport.datasets import FILLS, ORDERS, POSITIONS
from marketexport.store.duckdb import DuckDBStore
from tests.ingest.book_account_checks import assert_exports_match, ingest, iso_ns, row_of

MS = 1_000_000
BINANCE_STATUS = {"FILLED": "closed", "CANCELED": "canceled"}


def _json(path: Path) -> Any:
    return json.loads(path.read_text(), parse_float=Decimal)


def _dec(text: Any) -> Decimal | None:
    return None if text is None else Decimal(str(text))


def coinbase_orders(folder: Path) -> list[dict[str, Any]]:
    """Closed orders of the three pages, first occurrence of each id kept."""
    rows: dict[str, dict[str, Any]] = {}
    for page in sorted(folder.glob("orders_done_*.json")):
        for raw in _json(page):
            if raw["id"] in rows:
                continue
            assert raw["status"] == "done" and raw["done_reason"] == "filled"
            rows[raw["id"]] = row_of(
                ORDERS,
                exchange="coinbase",
                account="default",
                symbol=raw["product_id"].replace("-", "/"),
                order_id=raw["id"],
                time=iso_ns(raw["created_at"]),
                updated_time=iso_ns(raw["done_at"]),
                side=raw["side"],
                type=raw["type"],
                status="closed",
                amount=_dec(raw["size"]),
                filled=_dec(raw["filled_size"]),
                cost=_dec(raw["executed_value"]),
                fee=_dec(raw["fill_fees"]),
                fee_currency=raw["product_id"].split("-")[1],
                post_only=raw["post_only"],
            )
    return list(rows.values())


def ccxt_orders(path: Path) -> list[dict[str, Any]]:
    rows = []
    for case in _json(path):
        body = case["httpResponse"]
        for raw in body if isinstance(body, list) else [body]:
            futures = "positionSide" in raw
            market = raw["type"] == "MARKET"
            rows.append(
                row_of(
                    ORDERS,
                    exchange="binance",
                    account="default",
                    symbol=raw["symbol"][:-4] + "/USDT" + (":USDT" if futures else ""),
                    order_id=raw["orderId"],
                    client_order_id=raw["clientOrderId"],
                    time=int(raw["time"]) * MS,
                    updated_time=int(raw["updateTime"]) * MS,
                    side=raw["side"].lower(),
                    type=raw["type"].lower(),
                    time_in_force=raw["timeInForce"],
                    status=BINANCE_STATUS[raw["status"]],
                    price=None if market else _dec(raw["price"]),
                    amount=_dec(raw["origQty"]),
                    filled=_dec(raw["executedQty"]),
                    average=_dec(raw.get("avgPrice")),
                    cost=_dec(raw.get("cummulativeQuoteQty", raw.get("cumQuote"))),
                    reduce_only=raw.get("reduceOnly"),
                    post_only=False,
                )
            )
    return rows


def bittrex_orders(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()[4:]
    rows = []
    for raw in csv.DictReader(lines):
        rows.append(
            row_of(
                ORDERS,
                exchange="bittrex",
                account="default",
                symbol=f"{raw['Base']}/{raw['Quote']}",
                order_id=raw["TXID"],
                time=iso_ns(raw["Time (UTC)"] + "Z"),
                side={"Bought": "buy", "Sold": "sell"}[raw["Transaction"]],
                type=raw["Order Type"].lower(),
                time_in_force="GTC",
                price=_dec(raw["Price"]),
                filled=_dec(raw["Quantity (Base)"]),
                cost=_dec(raw["Total (Quote)"]),
                fee=_dec(raw["Fees (Quote)"]),
                fee_currency=raw["Quote"],
            )
        )
    return rows


@pytest.mark.slow
def test_orders_from_three_sources_export_exactly(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    folder = real / "account" / "coinbase_exchange"
    pages = sorted(folder.glob("orders_done_*.json"))
    ccxt = real / "account" / "ccxt_static" / "binance_orders_excerpt.json"
    bittrex = real / "account" / "exchange_exports" / "rotki" / "bittrex_order_history.csv"
    expected = coinbase_orders(folder) + ccxt_orders(ccxt) + bittrex_orders(bittrex)

    counts = ingest(store, *pages, ccxt, bittrex)

    assert counts["orders"] == {"rows_read": 169 + 3 + 2, "rows_added": 136 + 3 + 2}
    assert_exports_match(store, "orders", expected, tmp_path, time_unit="us")


def coinbase_fills(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for page in sorted(folder.glob("fills_*.json")):
        for raw in _json(page):
            rows.append(
                row_of(
                    FILLS,
                    exchange="coinbase",
                    account="desk",
                    symbol=raw["product_id"].replace("-", "/"),
                    trade_id=str(raw["trade_id"]),
                    order_id=raw["order_id"],
                    time=iso_ns(raw["created_at"]),
                    side=raw["side"],
                    taker_or_maker={"M": "maker", "T": "taker"}[raw["liquidity"]],
                    price=_dec(raw["price"]),
                    amount=_dec(raw["size"]),
                    fee=_dec(raw["fee"]),
                    fee_currency=raw["product_id"].split("-")[1],
                )
            )
    return rows


def bbgo_fills(path: Path) -> list[dict[str, Any]]:
    return [
        row_of(
            FILLS,
            exchange="binance",
            account="desk",
            symbol="BTC/USDT",
            trade_id=str(raw["id"]),
            time=iso_ns(raw["tradedAt"]),
            side=raw["side"].lower(),
            taker_or_maker="maker" if raw["isMaker"] else "taker",
            price=_dec(raw["price"]),
            amount=_dec(raw["quantity"]),
            cost=_dec(raw["quoteQuantity"]),
            fee=_dec(raw["fee"]),
            fee_currency=raw["feeCurrency"],
        )
        for raw in _json(path)
    ]


def ccxt_fills(path: Path) -> list[dict[str, Any]]:
    rows = []
    for case in _json(path):
        for raw in case["httpResponse"]:
            futures = "positionSide" in raw
            buyer = raw.get("isBuyer", raw.get("buyer"))
            maker = raw.get("isMaker", raw.get("maker"))
            rows.append(
                row_of(
                    FILLS,
                    exchange="binance",
                    account="desk",
                    symbol=raw["symbol"][:-4] + "/USDT" + (":USDT" if futures else ""),
                    trade_id=raw["id"],
                    order_id=raw["orderId"],
                    time=int(raw["time"]) * MS,
                    side="buy" if buyer else "sell",
                    taker_or_maker="maker" if maker else "taker",
                    price=_dec(raw["price"]),
                    amount=_dec(raw["qty"]),
                    cost=_dec(raw["quoteQty"]),
                    fee=_dec(raw["commission"]),
                    fee_currency=raw["commissionAsset"],
                    realized_pnl=_dec(raw.get("realizedPnl")),
                )
            )
    return rows


def kucoin_fills(path: Path) -> list[dict[str, Any]]:
    rows = []
    for raw in csv.DictReader(path.read_text().splitlines()):
        time_ns = iso_ns(raw["tradeCreatedAt"].replace(" ", "T") + "Z")
        rows.append(
            row_of(
                FILLS,
                exchange="kucoin",
                account="desk",
                symbol=raw["symbol"].replace("-", "/"),
                trade_id=f"{time_ns // MS}-0",
                time=time_ns,
                side=raw["side"],
                price=_dec(raw["price"]),
                amount=_dec(raw["size"]),
                cost=_dec(raw["funds"]),
                fee=_dec(raw["fee"]),
                fee_currency=raw["feeCurrency"],
            )
        )
    return rows


def bitstamp_fills(path: Path) -> list[dict[str, Any]]:
    rows = []
    for raw in csv.DictReader(path.read_text().splitlines()):
        if raw["Type"] != "Market":
            continue
        amount, base = raw["Amount"].split()
        price, quote = raw["Rate"].split()
        fee, fee_currency = raw["Fee"].split()
        # "Jan. 28, 2022, 12:31 AM"
        month_day, year, clock = (part.strip() for part in raw["Datetime"].split(","))
        hour, minute = clock.split()[0].split(":")
        hour_24 = int(hour) % 12 + (12 if clock.endswith("PM") else 0)
        assert month_day.startswith("Jan.")
        seconds = timegm((int(year), 1, int(month_day.split()[1]), hour_24, int(minute), 0))
        rows.append(
            row_of(
                FILLS,
                exchange="bitstamp",
                account="desk",
                symbol=f"{base}/{quote}",
                trade_id=f"{seconds * 1000}-0",
                time=seconds * 1_000_000_000,
                side=raw["Sub Type"].lower(),
                price=_dec(price),
                amount=_dec(amount),
                cost=_dec(raw["Value"].split()[0]),
                fee=_dec(fee),
                fee_currency=fee_currency,
            )
        )
    return rows


@pytest.mark.slow
def test_fills_from_five_sources_export_exactly(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    account = real / "account"
    coinbase = account / "coinbase_exchange"
    bbgo = account / "bbgo" / "btcusdt-trades.json"
    ccxt = account / "ccxt_static" / "binance_mytrades_excerpt.json"
    kucoin = account / "exchange_exports" / "rotki" / "kucoin_order_history.csv"
    bitstamp = account / "exchange_exports" / "rotki" / "bitstamp.csv"
    expected = (
        coinbase_fills(coinbase)
        + bbgo_fills(bbgo)
        + ccxt_fills(ccxt)
        + kucoin_fills(kucoin)
        + bitstamp_fills(bitstamp)
    )

    counts = ingest(
        store, *sorted(coinbase.glob("fills_*.json")), bbgo, ccxt, kucoin, bitstamp, account="desk"
    )

    assert counts["fills"]["rows_added"] == 700 + 3432 + 2 + 2 + 1 == len(expected)
    assert_exports_match(store, "fills", expected, tmp_path, time_unit="us")


def _snapshot(row: dict[str, Any]) -> str:
    """The snapshot digest as documented: SHA-256 (first 32 hex digits) of the JSON list of
    [column, value] for every column after the key, decimals without trailing zeros."""
    fields = [
        [name, None if row[name] is None else format(row[name].normalize(), "f")]
        for name in POSITIONS.column_names
        if name not in POSITIONS.key
    ]
    text = json.dumps(fields, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _position(raw: dict[str, Any]) -> dict[str, Any]:
    row = row_of(
        POSITIONS,
        exchange="binance",
        account="default",
        symbol="BTC/USDT:USDT",
        time=int(raw["updateTime"]) * MS,
        side="both",
        contracts=_dec(raw["positionAmt"]),
        entry_price=_dec(raw["entryPrice"]),
        mark_price=_dec(raw["markPrice"]),
        liquidation_price=_dec(raw["liquidationPrice"]),
        notional=_dec(raw["notional"]),
        initial_margin=_dec(raw["initialMargin"]),
        maintenance_margin=_dec(raw["maintMargin"]),
        unrealized_pnl=_dec(raw["unRealizedProfit"]),
    )
    row["snapshot"] = _snapshot(row)
    return row


def test_positions_export_exactly(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    """Both responses share updateTime and side but differ in mark price, profit,
    liquidation price and notional: both snapshots are kept; importing again adds none."""
    path = real / "account" / "ccxt_static" / "binance_positions_linear_excerpt.json"
    expected = [_position(case["httpResponse"][0]) for case in _json(path)]

    counts = ingest(store, path)
    again = ingest(store, path)

    assert counts["positions"] == {"rows_read": 2, "rows_added": 2}
    assert again["positions"] == {"rows_read": 2, "rows_added": 0}
    assert expected[0]["snapshot"] != expected[1]["snapshot"]
    assert_exports_match(store, "positions", expected, tmp_path, time_unit="ms")


def test_same_snapshot_written_differently_is_one_row(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    """Trailing zeros and key order do not make another snapshot; another value does."""
    path = real / "account" / "ccxt_static" / "binance_positions_linear_excerpt.json"
    cases = _json(path)[:1]
    same = json.loads(json.dumps(cases, default=str))
    raw = same[0]["httpResponse"][0]
    raw["positionAmt"] = "0.00900"
    same[0]["httpResponse"][0] = dict(reversed(list(raw.items())))
    other = json.loads(json.dumps(same))
    other[0]["httpResponse"][0]["markPrice"] = "67502.68519859"
    files = []
    for name, content in (("first", cases), ("same", same), ("other", other)):
        target = tmp_path / f"binance_{name}_positions.json"
        target.write_text(json.dumps(content, default=str))
        files.append(target)

    added = [ingest(store, target)["positions"]["rows_added"] for target in files]

    assert added == [1, 0, 1]
