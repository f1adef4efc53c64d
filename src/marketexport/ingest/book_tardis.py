"""tardis.dev CSV downloads: book snapshots, incremental L2 updates and quotes.

Every tardis CSV starts with ``exchange,symbol,timestamp,local_timestamp`` (both times in
microseconds: the exchange's and the recorder's). The rest of the header says the kind:

- ``book_snapshot_N``: ``asks[0].price,asks[0].amount,bids[0].price,...`` up to level
  N-1, one snapshot per line -> orderbook rows with update_type ``snapshot`` and
  ``level`` (empty cells where the book was shallower are skipped);
- ``incremental_book_L2``: ``is_snapshot,side,price,amount``, one level per line; lines
  with the same times form one message -> ``snapshot`` rows, or ``set``/``delete``
  (amount 0) rows;
- ``quotes``: ``ask_amount,ask_price,bid_price,bid_amount`` (this order) -> ticker rows.

Other tardis kinds (trades, derivative_ticker...) are left to other importers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import ORDERBOOK, TICKER
from . import Hints, Parsed
from .book_levels import event_ids, levels_by_price, ranks_of_events
from .convert import build_table, source_error
from .records import naming_file, ranks
from .symbols import normalize_exchange, unify_symbol
from .tabular import decimals, epoch_times, first_line, read_csv_strings, read_payload, text_head

PREFIX = "exchange,symbol,timestamp,local_timestamp,"
L2_TAIL = "is_snapshot,side,price,amount"
QUOTE_NAMES = ("ask_amount", "ask_price", "bid_price", "bid_amount")
_LEVEL = re.compile(r"^(?P<side>asks|bids)\[(?P<level>\d+)\]\.(?P<what>price|amount)$")
SIDES = {"asks": "ask", "bids": "bid", "ask": "ask", "bid": "bid"}


def kind_of(header: str) -> str | None:
    """snapshot, l2 or quotes for a tardis header line, None for other files."""
    if not header.startswith(PREFIX):
        return None
    tail = header[len(PREFIX) :]
    if tail.startswith("asks[0].price,asks[0].amount,bids[0].price"):
        return "snapshot"
    if tail == L2_TAIL:
        return "l2"
    if sorted(tail.split(",")) == sorted(QUOTE_NAMES):
        return "quotes"
    return None


def _symbols(table: pa.Table, path: Path) -> tuple[pa.Array, pa.Array]:
    """Unified exchange and symbol columns from tardis' exchange ids and native symbols."""
    pairs = {}
    for exchange_name, native in zip(
        table["exchange"].to_pylist(), table["symbol"].to_pylist(), strict=True
    ):
        if (exchange_name, native) not in pairs:
            if not exchange_name or not native:
                raise source_error(path, "a line has no exchange or symbol")
            exchange, _market = normalize_exchange(exchange_name)
            pairs[(exchange_name, native)] = (exchange, unify_symbol(native, exchange_name))
    keys = list(zip(table["exchange"].to_pylist(), table["symbol"].to_pylist(), strict=True))
    return (
        pa.array([pairs[key][0] for key in keys], pa.string()),
        pa.array([pairs[key][1] for key in keys], pa.string()),
    )


def _times(table: pa.Table, path: Path) -> tuple[pa.Array, pa.Array]:
    exchange_time, _ = epoch_times(path, table["timestamp"], "timestamp", 2, "us")
    local_time, _ = epoch_times(path, table["local_timestamp"], "local_timestamp", 2, "us")
    return exchange_time, local_time


def read_snapshots(path: Path, table: pa.Table) -> Parsed:
    """One orderbook snapshot per line, as long rows with their level."""
    exchange, symbol = _symbols(table, path)
    time_ns, receive_ns = _times(table, path)
    seq = pa.array(ranks(zip(symbol.to_pylist(), time_ns.to_pylist(), strict=True)), pa.int64())
    pieces = []
    for name in table.column_names:
        match = _LEVEL.match(name)
        if match is None or match["what"] != "price":
            continue
        price = table[name].combine_chunks()
        amount = table[f"{match['side']}[{match['level']}].amount"].combine_chunks()
        present = pc.not_equal(price, "")
        columns = {
            "exchange": exchange,
            "symbol": symbol,
            "time": time_ns,
            "seq": seq,
            "receive_time": receive_ns,
            "price": price,
            "amount": amount,
        }
        piece = pa.table({key: pc.filter(value, present) for key, value in columns.items()})
        rows = piece.num_rows
        piece = piece.append_column("side", pa.array([SIDES[match["side"]]] * rows))
        piece = piece.append_column("level", pa.array([int(match["level"])] * rows, pa.int64()))
        pieces.append(piece)
    if not pieces:
        raise source_error(path, "no asks[N].price columns in the header", 1)
    rows = pa.concat_tables(pieces).combine_chunks()
    columns = {name: rows[name] for name in rows.column_names}
    columns["price"] = decimals(path, rows["price"], "price", None)
    columns["amount"] = decimals(path, rows["amount"], "amount", None)
    columns["update_type"] = "snapshot"
    return Parsed(ORDERBOOK, build_table(ORDERBOOK, columns, rows.num_rows))


def read_l2(path: Path, table: pa.Table) -> Parsed:
    """incremental_book_L2 lines as snapshot, set and delete rows."""
    exchange, symbol = _symbols(table, path)
    time_ns, receive_ns = _times(table, path)
    flags = pc.utf8_lower(table["is_snapshot"].combine_chunks())
    if not pc.all(pc.is_in(flags, pa.array(["true", "false"]))).as_py():
        bad = pc.index(pc.is_in(flags, pa.array(["true", "false"])), False).as_py()
        raise source_error(
            path, f"is_snapshot {flags[bad].as_py()!r} is not true or false", bad + 2
        )
    is_snapshot = pc.equal(flags, "true")
    side_text = table["side"].to_pylist()
    for index, side in enumerate(side_text):
        if side not in ("bid", "ask"):
            raise source_error(path, f"side {side!r} is not bid or ask", index + 2)
    amount = decimals(path, table["amount"], "amount", 2)
    price = decimals(path, table["price"], "price", 2)
    is_zero = pc.equal(amount, pa.scalar(0, amount.type))
    update_type = pc.if_else(is_snapshot, "snapshot", pc.if_else(is_zero, "delete", "set"))

    # Lines of one message share both times and the snapshot flag; seq tells apart
    # messages of the same exchange time.
    keys = zip(
        symbol.to_pylist(),
        time_ns.to_pylist(),
        receive_ns.to_pylist(),
        is_snapshot.to_pylist(),
        strict=True,
    )
    events = event_ids(keys)
    seq = ranks_of_events(events, symbol.to_pylist(), time_ns.to_pylist())
    level = levels_by_price(events, side_text, price, is_snapshot.to_pylist())
    columns = {
        "exchange": exchange,
        "symbol": symbol,
        "time": time_ns,
        "seq": pa.array(seq, pa.int64()),
        "receive_time": receive_ns,
        "update_type": update_type,
        "side": pa.array(side_text, pa.string()),
        "price": price,
        "amount": amount,
        "level": pa.array(level, pa.int64()),
    }
    return Parsed(ORDERBOOK, build_table(ORDERBOOK, columns, table.num_rows))


def read_quotes(path: Path, table: pa.Table) -> Parsed:
    """quotes lines as ticker rows (best bid and ask with their amounts)."""
    exchange, symbol = _symbols(table, path)
    time_ns, receive_ns = _times(table, path)
    seq = ranks(zip(symbol.to_pylist(), time_ns.to_pylist(), strict=True))
    columns = {
        "exchange": exchange,
        "symbol": symbol,
        "time": time_ns,
        "seq": pa.array(seq, pa.int64()),
        "receive_time": receive_ns,
        "bid": decimals(path, table["bid_price"], "bid_price", 2),
        "bid_size": decimals(path, table["bid_amount"], "bid_amount", 2),
        "ask": decimals(path, table["ask_price"], "ask_price", 2),
        "ask_size": decimals(path, table["ask_amount"], "ask_amount", 2),
    }
    return Parsed(TICKER, build_table(TICKER, columns, table.num_rows))


class TardisBookImporter:
    """tardis.dev book_snapshot_N, incremental_book_L2 and quotes CSVs (also .csv.gz)."""

    name = "tardis-book"

    def sniff(self, path: Path, head: bytes) -> bool:
        name = path.name.lower()
        if not (name.endswith(".csv") or name.endswith(".csv.gz")):
            return False
        return kind_of(first_line(text_head(path, head))) is not None

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            return self._read(path, hints)

    def _read(self, path: Path, hints: Hints) -> list[Parsed]:
        data = read_payload(path)
        header = first_line(data[:65536])
        kind = kind_of(header)
        if kind is None:
            raise source_error(path, "not a tardis.dev book snapshot, L2 or quotes CSV", 1)
        names = header.split(",")
        table = read_csv_strings(path, data, names, skip_rows=1)
        readers = {"snapshot": read_snapshots, "l2": read_l2, "quotes": read_quotes}
        return [readers[kind](path, table)]


IMPORTERS = [TardisBookImporter()]
