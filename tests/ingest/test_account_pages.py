"""Overlapping paged account exports import without duplicates; a re-import adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

from marketexport.datasets import FILLS, ORDERS
from marketexport.ingest import Hints, ingest_paths
from marketexport.store.duckdb import DuckDBStore


def _ids(store: DuckDBStore, table: str, column: str) -> list[str]:
    rows = store._con.execute(f"SELECT {column} FROM {table}").fetchall()
    return [row[0] for row in rows]


def _added(store: DuckDBStore, paths: list[Path], dataset: str) -> list[int]:
    reports = ingest_paths(paths, store, Hints())
    assert all(report.ok for report in reports), [r.error for r in reports]
    return [report.datasets[dataset]["rows_added"] for report in reports]


def test_overlapping_order_pages_keep_one_row_per_order(real: Path, store: DuckDBStore) -> None:
    pages = sorted((real / "account" / "coinbase_exchange").glob("orders_done_*.json"))
    source_ids = [order["id"] for page in pages for order in json.loads(page.read_text())]

    first = _added(store, pages, "orders")
    again = _added(store, pages, "orders")

    assert len(source_ids) == 169 and len(set(source_ids)) == 136
    assert first == [100, 36, 0]
    assert again == [0, 0, 0]
    assert sorted(_ids(store, "orders", "order_id")) == sorted(set(source_ids))
    assert store.count(ORDERS) == 136


def test_pages_in_any_order_give_the_same_orders(real: Path, store: DuckDBStore) -> None:
    pages = sorted((real / "account" / "coinbase_exchange").glob("orders_done_*.json"))

    added = _added(store, list(reversed(pages)), "orders")

    assert sum(added) == 136
    assert added[0] == 33


def test_fill_pages_import_once(real: Path, store: DuckDBStore) -> None:
    pages = sorted((real / "account" / "coinbase_exchange").glob("fills_*.json"))
    source_ids = [str(fill["trade_id"]) for page in pages for fill in json.loads(page.read_text())]

    first = _added(store, pages, "fills")
    again = _added(store, pages, "fills")

    assert first == [100] * 7 and again == [0] * 7
    assert sorted(_ids(store, "fills", "trade_id")) == sorted(source_ids)
    assert store.count(FILLS) == len(set(source_ids)) == 700
