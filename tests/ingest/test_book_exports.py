"""orderbook and book_depth: real order-book files in, every value out in four formats.

Expected rows are read here with csv, json and zipfile only, following SOURCES.md §6.
"""

from __future__ import annotations

import csv
import json
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from marketexport.datasets import BOOK_DEPTH, ORDERBOOK
from marketexport.store.duckdb import DuckDBStore
from tests.ingest.book_account_checks import assert_exports_match, ingest, iso_ns, row_of

MS, US = 1_000_000, 1000


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def binance_depth(path: Path) -> list[dict[str, Any]]:
    """Historical depth rows; lines repeated verbatim in the file count once."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    levels = {"a": 0, "b": 0}
    for raw in _csv(path):
        side = {"a": "ask", "b": "bid"}[raw["side"]]
        if (side, raw["price"]) in rows:
            continue
        snapshot = raw["update_type"] == "snap"
        kind = "snapshot" if snapshot else ("delete" if Decimal(raw["qty"]) == 0 else "set")
        rows[(side, raw["price"])] = row_of(
            ORDERBOOK,
            exchange="binance",
            symbol="BTC/USDT:USDT",
            time=int(raw["timestamp"]) * MS,
            seq=0,
            update_type=kind,
            side=side,
            price=Decimal(raw["price"]),
            amount=Decimal(raw["qty"]),
            # The file lists each side best first.
            level=levels[raw["side"]] if snapshot else None,
            sequence=int(raw["last_update_id"]),
            first_sequence=int(raw["first_update_id"]),
            prev_sequence=None if raw["pu"] == "-1" else int(raw["pu"]),
        )
        levels[raw["side"]] += snapshot
    return list(rows.values())


def tardis_snapshots(path: Path) -> list[dict[str, Any]]:
    rows = []
    for raw in _csv(path):
        depth = sum(1 for name in raw if name.startswith("asks[") and name.endswith(".price"))
        for level in range(depth):
            for side in ("ask", "bid"):
                rows.append(
                    row_of(
                        ORDERBOOK,
                        exchange="binance",
                        symbol="BTC/USDT:USDT",
                        time=int(raw["timestamp"]) * US,
                        seq=0,
                        update_type="snapshot",
                        side=side,
                        price=Decimal(raw[f"{side}s[{level}].price"]),
                        amount=Decimal(raw[f"{side}s[{level}].amount"]),
                        level=level,
                        receive_time=int(raw["local_timestamp"]) * US,
                    )
                )
    return rows


def tardis_l2(path: Path) -> list[dict[str, Any]]:
    raws = _csv(path)
    assert all(raw["is_snapshot"] == "true" for raw in raws)
    rows = []
    for side in ("ask", "bid"):
        levels = sorted(
            (raw for raw in raws if raw["side"] == side),
            key=lambda raw: Decimal(raw["price"]),
            reverse=side == "bid",
        )
        for level, raw in enumerate(levels):
            rows.append(
                row_of(
                    ORDERBOOK,
                    exchange="deribit",
                    symbol="BTC/USD:BTC",
                    time=int(raw["timestamp"]) * US,
                    seq=0,
                    update_type="snapshot",
                    side=side,
                    price=Decimal(raw["price"]),
                    amount=Decimal(raw["amount"]),
                    level=level,
                    receive_time=int(raw["local_timestamp"]) * US,
                )
            )
    return rows


def bybit_book(path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as archive:
        lines = archive.read(archive.namelist()[0]).decode().splitlines()
    rows = []
    for line in lines:
        message = json.loads(line)
        snapshot = message["type"] == "snapshot"
        for key, side in (("b", "bid"), ("a", "ask")):
            for level, (price, size) in enumerate(message["data"][key]):
                zero = Decimal(size) == 0
                rows.append(
                    row_of(
                        ORDERBOOK,
                        exchange="bybit",
                        symbol="XRP/USDT:USDT",
                        time=message["ts"] * MS,
                        seq=0,
                        update_type="snapshot" if snapshot else ("delete" if zero else "set"),
                        side=side,
                        price=Decimal(price),
                        amount=Decimal(size),
                        level=level if snapshot else None,
                        sequence=message["data"]["u"],
                    )
                )
    return rows


@pytest.mark.slow
def test_orderbook_from_four_sources_exports_exactly(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    book = real / "book"
    snap = book / "nautilus" / "btcusdt-depth-snap.csv"
    update = book / "nautilus" / "btcusdt-depth-update.csv"
    five = book / "tardis" / "binance-futures_book_snapshot_5_BTCUSDT.csv"
    l2 = book / "tardis" / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    bybit = book / "bybit" / "xrpusdt-ob500.data.zip"
    expected = (
        binance_depth(snap)
        + binance_depth(update)
        + tardis_snapshots(five)
        + tardis_l2(l2)
        + bybit_book(bybit)
    )

    counts = ingest(store, snap, update, five, l2, bybit)

    assert counts["orderbook"]["rows_read"] == 100 + 100 + 100 + 15 + 3966
    assert counts["orderbook"]["rows_added"] == len(expected) == 100 + 63 + 100 + 15 + 3966
    assert_exports_match(store, "orderbook", expected, tmp_path, time_unit="us")


def test_orderbook_filters_select_exact_rows(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    update = real / "book" / "nautilus" / "btcusdt-depth-update.csv"
    five = real / "book" / "tardis" / "binance-futures_book_snapshot_5_BTCUSDT.csv"
    ingest(store, update, five)
    start, end = 1598918403888000, 1598918403965000
    expected = [
        row
        for row in tardis_snapshots(five)
        if start * US <= row["time"] < end * US and row["side"] == "bid" and row["level"] < 2
    ]

    assert len(expected) == 2 * 2
    assert_exports_match(
        store,
        "orderbook",
        expected,
        tmp_path,
        exchanges=["binance"],
        symbols=["BTC/USDT:USDT"],
        start=f"{start * US}ns",
        end=f"{end * US}ns",
        where=["side = bid", "level in (0, 1)", "update_type = snapshot"],
    )


def test_binance_depth_update_keeps_deletes_and_sequence_ids(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    update = real / "book" / "nautilus" / "btcusdt-depth-update.csv"
    ingest(store, update)
    expected = [row for row in binance_depth(update) if row["update_type"] == "delete"]

    # 21 delete lines, 8 of them among the lines the file repeats verbatim.
    assert len(expected) == 13
    assert_exports_match(store, "orderbook", expected, tmp_path, where=["update_type = delete"])


def test_book_depth_bands_export_exactly(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    path = real / "book" / "binance_vision" / "um" / "BTCUSDT-bookDepth-2026-09-15.csv"
    expected = [
        row_of(
            BOOK_DEPTH,
            exchange="binance",
            symbol="BTC/USDT:USDT",
            time=iso_ns(raw["timestamp"].replace(" ", "T") + "Z"),
            percentage=Decimal(raw["percentage"]),
            depth=Decimal(raw["depth"]),
            notional=Decimal(raw["notional"]),
        )
        for raw in _csv(path)
    ]

    ingest(store, path)

    assert_exports_match(store, "book_depth", expected, tmp_path, time_unit="ms")
