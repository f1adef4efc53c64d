"""Ticker files: Coinbase Exchange REST tickers and quote tables in Parquet.

- Coinbase ``GET /products/<id>/ticker`` responses saved as JSON (``ask, bid, volume,
  trade_id, price, size, time``): one ticker row. The body names no product, so the
  symbol comes from a product id in the file name (``ticker_BTC-USD.json``) or
  ``--symbol``. Times keep their nanoseconds (``...59.203013541Z``).
- Quote tables in Parquet (nautilus and pandas dumps): ``timestamp`` plus ``bid``,
  ``ask``, ``bid_size``, ``ask_size`` and optionally ``symbol``. Float columns are taken
  at their shortest round-trip text. A nautilus instrument id (``BTCUSDT.BINANCE``)
  names the exchange; otherwise give ``--exchange`` (and ``--symbol`` without a symbol
  column).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..datasets import TICKER
from . import Hints, Parsed
from .book_levels import QuoteRows
from .convert import build_table, source_error
from .records import field, iso_to_ns, load_json, naming_file, need_exchange, ranks
from .symbols import unify_symbol
from .tabular import decimals

COINBASE_FIELDS = ("ask", "bid", "volume", "trade_id", "price", "size", "time")
QUOTE_COLUMNS = ("bid", "ask", "bid_size", "ask_size")
_PRODUCT = re.compile(r"(?<![A-Za-z0-9])([A-Z0-9]{2,10}-[A-Z0-9]{2,10})(?![A-Za-z0-9])")


def coinbase_product(path: Path, hints: Hints) -> str:
    """The product of a saved ticker: from the file name, else from --symbol."""
    match = _PRODUCT.search(path.stem)
    if match is not None:
        return unify_symbol(match[1], "coinbase", "spot")
    if hints.symbol:
        return unify_symbol(hints.symbol, "coinbase", "spot")
    raise source_error(
        path,
        "a Coinbase ticker response names no product and the file name holds no "
        "product id such as BTC-USD; give it with --symbol",
    )


def read_coinbase_ticker(path: Path, hints: Hints) -> list[Parsed]:
    """One saved Coinbase Exchange ticker response as a ticker row."""
    body: Any = load_json(path)
    if not isinstance(body, dict):
        raise source_error(path, "expected one JSON object (a Coinbase ticker response)")
    rows = QuoteRows(path)
    rows.add(
        exchange="coinbase",
        symbol=coinbase_product(path, hints),
        time_ns=iso_to_ns(str(field(body, "time", path)), path),
        line=None,
        bid=body.get("bid"),
        ask=body.get("ask"),
        last=body.get("price"),
        last_size=body.get("size"),
        last_trade_id=None if body.get("trade_id") is None else str(body["trade_id"]),
        base_volume_24h=body.get("volume"),
    )
    return [Parsed(TICKER, rows.table())]


def quote_symbols(path: Path, table: pa.Table, hints: Hints) -> tuple[Any, Any]:
    """Exchange and symbol columns of a quote table (per row when the file has symbols)."""
    if "symbol" not in table.column_names:
        exchange = need_exchange(hints, path, "a quote table")
        if not hints.symbol:
            raise source_error(path, "the quote table has no symbol column; give --symbol")
        return exchange, unify_symbol(hints.symbol, exchange)
    names = table["symbol"].to_pylist()
    mapped: dict[str, tuple[str, str]] = {}
    for name in set(names):
        if name is None:
            raise source_error(path, "a row has an empty symbol")
        native, _, venue = name.rpartition(".") if "." in name else (name, "", "")
        exchange = venue.lower() if venue else need_exchange(hints, path, "a quote table")
        mapped[name] = (exchange, unify_symbol(native, exchange))
    exchanges = pa.array([mapped[name][0] for name in names], pa.string())
    return exchanges, pa.array([mapped[name][1] for name in names], pa.string())


def read_quote_table(path: Path, hints: Hints) -> list[Parsed]:
    """A Parquet table of best bid/ask quotes as ticker rows."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise source_error(path, f"cannot read the Parquet file: {exc}") from None
    times = table["timestamp"].combine_chunks()
    if not pa.types.is_timestamp(times.type):
        raise source_error(path, f"timestamp column is {times.type}, not a timestamp")
    if times.type.tz not in (None, "UTC", "+00:00", "Etc/UTC"):
        raise source_error(path, f"timestamp column has time zone {times.type.tz!r}, not UTC")
    time_ns = pc.cast(pc.cast(times, pa.timestamp(times.type.unit)), pa.timestamp("ns"))
    exchange, symbol = quote_symbols(path, table, hints)
    symbol_list = symbol.to_pylist() if isinstance(symbol, pa.Array) else [symbol] * len(times)
    columns: dict[str, Any] = {
        "exchange": exchange,
        "symbol": symbol,
        "time": time_ns,
        "seq": pa.array(ranks(zip(symbol_list, time_ns.to_pylist(), strict=True)), pa.int64()),
    }
    for name in QUOTE_COLUMNS:
        columns[name] = decimals(path, table[name], name, None)
    return [Parsed(TICKER, build_table(TICKER, columns, table.num_rows))]


class TickerImporter:
    """Coinbase Exchange ticker responses (JSON) and quote tables (Parquet)."""

    name = "ticker-files"

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix == ".json":
            text = head.lstrip()
            return text.startswith(b"{") and all(
                f'"{name}"'.encode() in head for name in COINBASE_FIELDS
            )
        if path.suffix == ".parquet" and head.startswith(b"PAR1"):
            try:
                names = pq.read_schema(path).names
            except (pa.ArrowException, OSError):
                return False
            return "timestamp" in names and all(name in names for name in QUOTE_COLUMNS)
        return False

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            if path.suffix == ".parquet":
                return read_quote_table(path, hints)
            return read_coinbase_ticker(path, hints)


IMPORTERS = [TickerImporter()]
