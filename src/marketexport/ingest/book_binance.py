"""Binance order-book files: historical L2 depth CSVs and public-data bookTicker/bookDepth.

- Historical order-book download (``symbol,timestamp,first_update_id,last_update_id,side,
  update_type,price,qty,pu``): ``snap`` rows are a snapshot, ``set`` rows replace a
  level's amount (qty 0 deletes it). ``pu`` exists only in USD-M/COIN-M futures streams,
  so these files are futures (``BTCUSD_PERP`` forms are COIN-M, the rest USD-M).
- Public-data ``bookTicker`` (futures): best bid/ask with the update id -> ticker, at the
  transaction time (the event time column is not kept).
- Public-data ``bookDepth`` (futures): depth and notional within -5..+5 % bands of the
  mid price, with no price levels -> the ``book_depth`` dataset, since the orderbook
  dataset holds price levels only.

Public-data files name their symbol (``BTCUSDT-bookTicker-2024-01-15.csv``); a file
renamed otherwise needs ``--symbol``. Plain CSVs and one-member zips are read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import BOOK_DEPTH, ORDERBOOK, TICKER
from . import Hints, Parsed
from .book_levels import event_ids, levels_by_price, ranks_of_events
from .convert import build_table, source_error
from .records import iso_to_ns, naming_file, ranks
from .symbols import unify_symbol
from .tabular import decimals, epoch_times, first_line, integers, read_csv_strings, read_payload

DEPTH_HEADER = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu"
BOOK_TICKER_HEADER = (
    "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time"
)
BOOK_DEPTH_HEADER = "timestamp,percentage,depth,notional"
PUBLIC_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+(?:_[A-Z0-9]+)?)-(?P<kind>bookTicker|bookDepth|metrics)"
    r"-\d{4}-\d{2}(?:-\d{2})?\.(?:csv|zip)$"
)
DEPTH_SIDES = {"a": "ask", "b": "bid"}
DEPTH_KINDS = {"snap": "snapshot", "set": "set"}


def futures_symbol(native: str) -> str:
    """Unified symbol of a Binance futures symbol: COIN-M when it has '_', else USD-M."""
    return unify_symbol(native, "binance", "inverse" if "_" in native else "linear")


def public_file_symbol(path: Path, hints: Hints, kind: str) -> str:
    """The symbol a public-data file name states, else the --symbol hint, else an error."""
    match = PUBLIC_NAME.match(path.name)
    if match is not None:
        return futures_symbol(match["symbol"])
    if hints.symbol:
        return futures_symbol(hints.symbol)
    raise source_error(
        path,
        f"Binance {kind} files name their symbol only in the file name "
        f"(SYMBOL-{kind}-YYYY-MM-DD.csv); give it with --symbol",
    )


def text_times_to_ns(path: Path, values: pa.Array, what: str) -> pa.Array:
    """timestamp[ns] from ``YYYY-MM-DD HH:MM:SS`` text (UTC), exactly to the second."""
    try:
        parsed = pc.strptime(values, format="%Y-%m-%d %H:%M:%S", unit="s")
        return pc.cast(parsed, pa.timestamp("ns"))
    except pa.ArrowInvalid:
        pass
    ns = [iso_to_ns(str(text), path, row + 2) for row, text in enumerate(values.to_pylist())]
    return pa.array(ns, pa.int64()).cast(pa.timestamp("ns"))


def read_depth(path: Path, table: pa.Table) -> Parsed:
    """Historical L2 rows: snap rows as a snapshot with levels, set rows as set/delete."""
    natives = table["symbol"].to_pylist()
    unified = {native: futures_symbol(native) for native in set(natives)}
    symbols = [unified[native] for native in natives]
    time_ns, _ = epoch_times(path, table["timestamp"], "timestamp", 2, "ms")
    sides, kinds = table["side"].to_pylist(), table["update_type"].to_pylist()
    for row, (side, kind) in enumerate(zip(sides, kinds, strict=True)):
        if side not in DEPTH_SIDES or kind not in DEPTH_KINDS:
            raise source_error(
                path,
                f"side {side!r} / update_type {kind!r} not understood (a|b, snap|set)",
                row + 2,
            )
    price = decimals(path, table["price"], "price", 2)
    amount = decimals(path, table["qty"], "qty", 2)
    last_id = integers(path, table["last_update_id"], "last_update_id", 2)
    previous = integers(path, table["pu"], "pu", 2)

    is_snapshot = [kind == "snap" for kind in kinds]
    times = time_ns.to_pylist()
    events = event_ids(zip(symbols, times, last_id.to_pylist(), is_snapshot, strict=True))
    side_names = [DEPTH_SIDES[side] for side in sides]
    is_zero = pc.equal(amount, pa.scalar(0, amount.type))
    update_type = pc.if_else(
        pa.array(is_snapshot), "snapshot", pc.if_else(is_zero, "delete", "set")
    )
    columns = {
        "exchange": "binance",
        "symbol": pa.array(symbols, pa.string()),
        "time": time_ns,
        "seq": pa.array(ranks_of_events(events, symbols, times), pa.int64()),
        "update_type": update_type,
        "side": pa.array(side_names, pa.string()),
        "price": price,
        "amount": amount,
        "level": pa.array(levels_by_price(events, side_names, price, is_snapshot), pa.int64()),
        "sequence": last_id,
        "first_sequence": integers(path, table["first_update_id"], "first_update_id", 2),
        # Snapshots carry pu = -1: there is no previous event.
        "prev_sequence": pc.if_else(pc.equal(previous, -1), pa.scalar(None, pa.int64()), previous),
    }
    return Parsed(ORDERBOOK, build_table(ORDERBOOK, columns, table.num_rows))


def read_book_ticker(path: Path, table: pa.Table, hints: Hints) -> Parsed:
    """Public-data bookTicker rows as ticker rows."""
    symbol = public_file_symbol(path, hints, "bookTicker")
    time_ns, _ = epoch_times(path, table["transaction_time"], "transaction_time", 2, "ms")
    columns = {
        "exchange": "binance",
        "symbol": symbol,
        "time": time_ns,
        "seq": pa.array(ranks(time_ns.to_pylist()), pa.int64()),
        "sequence": integers(path, table["update_id"], "update_id", 2),
        "bid": decimals(path, table["best_bid_price"], "best_bid_price", 2),
        "bid_size": decimals(path, table["best_bid_qty"], "best_bid_qty", 2),
        "ask": decimals(path, table["best_ask_price"], "best_ask_price", 2),
        "ask_size": decimals(path, table["best_ask_qty"], "best_ask_qty", 2),
    }
    return Parsed(TICKER, build_table(TICKER, columns, table.num_rows))


def read_book_depth(path: Path, table: pa.Table, hints: Hints) -> Parsed:
    """Public-data bookDepth rows as book_depth rows."""
    columns = {
        "exchange": "binance",
        "symbol": public_file_symbol(path, hints, "bookDepth"),
        "time": text_times_to_ns(path, table["timestamp"].combine_chunks(), "timestamp"),
        "percentage": decimals(path, table["percentage"], "percentage", 2),
        "depth": decimals(path, table["depth"], "depth", 2),
        "notional": decimals(path, table["notional"], "notional", 2),
    }
    return Parsed(BOOK_DEPTH, build_table(BOOK_DEPTH, columns, table.num_rows))


HEADERS = {DEPTH_HEADER: "depth", BOOK_TICKER_HEADER: "bookTicker", BOOK_DEPTH_HEADER: "bookDepth"}


class BinanceBookImporter:
    """Binance historical depth CSVs and public-data bookTicker and bookDepth files."""

    name = "binance-book"

    def _header(self, path: Path, head: bytes) -> str | None:
        name = path.name
        if name.endswith(".zip"):
            match = PUBLIC_NAME.match(name)
            return None if match is None or match["kind"] == "metrics" else match["kind"]
        if not name.endswith(".csv"):
            return None
        return HEADERS.get(first_line(head))

    def sniff(self, path: Path, head: bytes) -> bool:
        return self._header(path, head) is not None

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            return self._read(path, hints)

    def _read(self, path: Path, hints: Hints) -> list[Parsed]:
        data = read_payload(path)
        header = first_line(data[:4096])
        kind = HEADERS.get(header)
        if kind is None:
            raise source_error(path, f"header {header[:80]!r} is not a Binance book file's", 1)
        table = read_csv_strings(path, data, header.split(","), skip_rows=1)
        if kind == "depth":
            return [read_depth(path, table)]
        if kind == "bookTicker":
            return [read_book_ticker(path, table, hints)]
        return [read_book_depth(path, table, hints)]


IMPORTERS = [BinanceBookImporter()]
