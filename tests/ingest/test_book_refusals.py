"""Files that cannot be mapped are refused whole, with the file, the line and the reason."""

from __future__ import annotations

import json
from pathlib import Path

from marketexport.datasets import DATASETS
from marketexport.ingest import Hints, ingest_file
from marketexport.store.duckdb import DuckDBStore


def _nothing_stored(store: DuckDBStore) -> bool:
    return all(store.count(spec) == 0 for spec in DATASETS.values())


def test_bad_price_in_tardis_quotes_names_file_and_line(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    lines = (real / "book" / "tardis" / "huobi-dm-swap_quotes_BTC-USD.csv").read_text()
    rows = lines.splitlines()
    rows[3] = rows[3].replace("8629.3", "8629x", 1)
    path = tmp_path / "huobi-dm-swap_quotes_BTC-USD.csv"
    path.write_text("\n".join(rows) + "\n")

    report = ingest_file(path, store, Hints())

    assert report.error is not None
    assert report.error.startswith(f"{path}, line 4: ") and "'8629x'" in report.error
    assert _nothing_stored(store)


def test_unknown_order_status_refuses_the_whole_page(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    source = real / "account" / "coinbase_exchange" / "orders_done_BTC-USDT_page2.json"
    orders = json.loads(source.read_text())
    orders[-1]["status"] = "parked"
    path = tmp_path / "orders_page.json"
    path.write_text(json.dumps(orders))

    report = ingest_file(path, store, Hints())

    assert report.error is not None and str(path) in report.error
    assert "'parked'" in report.error and "done, open" in report.error
    assert _nothing_stored(store)


def test_unknown_ccxt_method_is_named(real: Path, store: DuckDBStore, tmp_path: Path) -> None:
    source = real / "account" / "ccxt_static" / "binance_mytrades_excerpt.json"
    cases = json.loads(source.read_text())
    cases[1]["method"] = "fetchDeposits"
    path = tmp_path / "binance_excerpt.json"
    path.write_text(json.dumps(cases))

    report = ingest_file(path, store, Hints())

    assert report.error is not None and str(path) in report.error
    assert "'fetchDeposits'" in report.error and "fetchMyTrades" in report.error
    assert _nothing_stored(store)


def test_bybit_depth_shared_by_spot_needs_the_symbol(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    message = {
        "topic": "orderbook.200.XRPUSDT",
        "type": "snapshot",
        "ts": 1733011200691,
        "data": {"s": "XRPUSDT", "b": [["1.9531", "6203"]], "a": [["1.9535", "10"]], "u": 1},
    }
    path = tmp_path / "2024-12-01_XRPUSDT_ob200.data"
    path.write_text(json.dumps(message, separators=(",", ":")) + "\n")

    refused = ingest_file(path, store, Hints())
    accepted = ingest_file(path, store, Hints(symbol="XRP/USDT"))

    assert refused.error is not None and str(path) in refused.error
    assert "--symbol" in refused.error
    assert accepted.ok and accepted.datasets["orderbook"]["rows_added"] == 2
    rows = store._con.execute("SELECT symbol, level FROM orderbook ORDER BY side").fetchall()
    assert rows == [("XRP/USDT", 0), ("XRP/USDT", 0)]


def test_coinbase_ticker_without_product_in_its_name_needs_the_symbol(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    path = tmp_path / "saved_ticker.json"
    path.write_bytes((real / "ticker" / "coinbase_exchange" / "ticker_ETH-BTC.json").read_bytes())

    refused = ingest_file(path, store, Hints())
    accepted = ingest_file(path, store, Hints(symbol="ETH-BTC"))

    assert refused.error is not None and str(path) in refused.error
    assert "--symbol" in refused.error
    assert accepted.ok
    assert store._con.execute("SELECT symbol FROM ticker").fetchall() == [("ETH/BTC",)]


def test_binance_depth_with_unknown_side_names_the_line(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    rows = (real / "book" / "nautilus" / "btcusdt-depth-snap.csv").read_text().splitlines()
    rows[5] = rows[5].replace(",b,snap,", ",x,snap,")
    path = tmp_path / "depth.csv"
    path.write_text("\n".join(rows) + "\n")

    report = ingest_file(path, store, Hints())

    assert report.error is not None
    assert report.error.startswith(f"{path}, line 6: ") and "'x'" in report.error
    assert _nothing_stored(store)


def test_bitstamp_date_in_another_form_names_the_line(
    real: Path, store: DuckDBStore, tmp_path: Path
) -> None:
    text = (real / "account" / "exchange_exports" / "rotki" / "bitstamp.csv").read_text()
    path = tmp_path / "bitstamp.csv"
    path.write_text(text.replace('"Jan. 28, 2022, 12:31 AM"', "2022-01-28T00:31"))

    report = ingest_file(path, store, Hints())

    assert report.error is not None
    assert report.error.startswith(f"{path}, line 3: ") and "'2022-01-28T00:31'" in report.error
    assert _nothing_stored(store)
