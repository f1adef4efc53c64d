"""Trade files in the layouts of tardis.dev, Bybit, OKX and nautilus_trader.

- tardis.dev ``trades`` CSV: ``exchange,symbol,timestamp,local_timestamp,id,side,price,
  amount``; times in microseconds; exchange and symbol in every row (tardis ids such as
  ``binance-futures`` say the market too).
- Bybit's public trading dump (derivatives): ``timestamp,symbol,side,size,price,
  tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional``; the timestamp is
  seconds with a decimal fraction, read from its text without float rounding.
- OKX trade-history CSV: ``trade_id,side,size,price,created_time`` under a bilingual
  header that is not valid UTF-8 (it is skipped undecoded); the file name starts with the
  instrument (``BTC-USDT-aggtrades-2023-11-18.csv``). OKX's public trades are aggregated
  per taker order, so the rows are stored with ``aggregated=true`` (without first/last ids).
- nautilus_trader's Binance trades Parquet: ``timestamp, trade_id, price, quantity,
  buyer_maker`` (the flag as the strings "True"/"False"); exchange from ``--exchange``,
  symbol from the file name (``btcusdt-trades.parquet``) or ``--symbol``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..datasets import TRADES
from . import Hints, Parsed
from .convert import ConvertError, build_table, epoch_to_ns, source_error
from .symbols import symbol_market
from .tabular import (
    at_lines,
    booleans,
    decimals,
    epoch_times,
    first_line,
    need_exchange,
    need_symbol,
    read_csv_strings,
    read_payload,
    require,
    sides,
    text_head,
)

TARDIS_TRADES_HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
BYBIT_HEADER = (
    "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,"
    "foreignNotional"
)
OKX_COLUMNS = ("trade_id", "side", "size", "price", "created_time")
NAUTILUS_TRADE_COLUMNS = {"timestamp", "trade_id", "price", "quantity", "buyer_maker"}
_OKX_NAME = re.compile(r"^(?P<inst>[A-Z0-9]+-[A-Z0-9]+(?:-SWAP|-\d{6})?)-(?:agg)?trades", re.I)


def _single(path: Path, values: pa.Array, what: str) -> str:
    distinct = pc.unique(values).to_pylist()
    if len(distinct) != 1 or not distinct[0]:
        raise source_error(path, f"expected one {what} in the file, found {distinct[:5]}")
    return str(distinct[0])


def read_tardis(path: Path, hints: Hints) -> Parsed:
    """A tardis.dev trades CSV."""
    data = read_payload(path)
    names = TARDIS_TRADES_HEADER.split(",")
    table = read_csv_strings(path, data, names, skip_rows=1)
    exchange, market = need_exchange(path, _single(path, table["exchange"], "exchange"), hints, "")
    native = _single(path, table["symbol"], "symbol")
    symbol = need_symbol(path, native, exchange, market, hints, "")
    values: dict[str, object] = {
        "exchange": exchange,
        "symbol": symbol,
        "time": epoch_times(path, table["timestamp"], "timestamp", 2, "us")[0],
        "trade_id": require(path, table["id"], "id", 2),
        "side": sides(path, table["side"], "side", 2),
        "price": decimals(path, table["price"], "price", 2),
        "amount": decimals(path, table["amount"], "amount", 2),
        "aggregated": False,
    }
    return Parsed(TRADES, build_table(TRADES, values, table.num_rows))


def _seconds_text_to_ns(path: Path, values: pa.Array, first: int) -> pa.Array:
    """Epoch seconds with a decimal fraction (``1696982287.4922``), exactly, as ns."""
    nanos: list[int] = []
    for index, text in enumerate(values.to_pylist()):
        try:
            number = Decimal(text)
            if not number.is_finite() or number != number.quantize(Decimal("1E-9")):
                raise InvalidOperation
        except InvalidOperation:
            with at_lines(path, first):
                raise ConvertError(f"timestamp {text!r} is not epoch seconds", index) from None
        nanos.append(int(number * 1_000_000_000))
    return epoch_to_ns(nanos, "ns")


def read_bybit(path: Path, hints: Hints) -> Parsed:
    """Bybit's public trading dump: linear (USDT, USDC) or inverse (USD) contracts."""
    table = read_csv_strings(path, read_payload(path), BYBIT_HEADER.split(","), skip_rows=1)
    native = _single(path, table["symbol"], "symbol")
    symbol = need_symbol(path, native, "bybit", "derivative", hints, "")
    values: dict[str, object] = {
        "exchange": "bybit",
        "symbol": symbol,
        "time": _seconds_text_to_ns(path, table["timestamp"], 2),
        "trade_id": require(path, table["trdMatchID"], "trdMatchID", 2),
        "side": sides(path, table["side"], "side", 2),
        "price": decimals(path, table["price"], "price", 2),
        "amount": decimals(path, table["size"], "size", 2),
        "aggregated": False,
    }
    # foreignNotional is the quote value for linear contracts; for inverse ones it is the
    # base value, which has no column.
    if symbol_market(symbol) == "linear":
        values["cost"] = decimals(path, table["foreignNotional"], "foreignNotional", 2)
    return Parsed(TRADES, build_table(TRADES, values, table.num_rows))


def read_okx(path: Path, hints: Hints) -> Parsed:
    """OKX trade history; the instrument comes from the file name or ``--symbol``."""
    match = _OKX_NAME.match(path.name)
    native = match["inst"].upper() if match else None
    how = "OKX trade files name the instrument only in the file name, e.g. BTC-USDT-..."
    symbol = need_symbol(path, native, "okx", None, hints, how)
    table = read_csv_strings(path, read_payload(path), OKX_COLUMNS, skip_rows=1)
    values: dict[str, object] = {
        "exchange": "okx",
        "symbol": symbol,
        "time": epoch_times(path, table["created_time"], "created_time", 2, "ms")[0],
        "trade_id": require(path, table["trade_id"], "trade_id", 2),
        "side": sides(path, table["side"], "side", 2),
        "price": decimals(path, table["price"], "price", 2),
        "amount": decimals(path, table["size"], "size", 2),
        "aggregated": True,
    }
    return Parsed(TRADES, build_table(TRADES, values, table.num_rows))


def read_nautilus_trades(path: Path, hints: Hints) -> Parsed:
    """nautilus_trader's trades Parquet (Binance layout, no exchange in the file)."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise source_error(path, f"cannot read the Parquet file: {exc}") from exc
    how = "nautilus trade Parquet files do not say it"
    exchange, market = need_exchange(path, None, hints, how)
    stem = path.name.split("-trades")[0] if "-trades" in path.name else None
    symbol = need_symbol(path, stem, exchange, market, hints, how)
    stamps = table["timestamp"].combine_chunks()
    if pa.types.is_timestamp(stamps.type):
        times = pc.cast(pc.cast(stamps, pa.timestamp(stamps.type.unit)), pa.timestamp("ns"))
    else:
        times = epoch_times(path, stamps, "timestamp", None)[0]
    buyer_maker = booleans(path, table["buyer_maker"], "buyer_maker", None)
    values: dict[str, object] = {
        "exchange": exchange,
        "symbol": symbol,
        "time": require(path, times, "timestamp", None),
        "trade_id": pc.cast(table["trade_id"].combine_chunks(), pa.string()),
        "side": pc.if_else(buyer_maker, "sell", "buy"),
        "price": decimals(path, table["price"], "price", None),
        "amount": decimals(path, table["quantity"], "quantity", None),
        "is_buyer_maker": buyer_maker,
        "aggregated": False,
    }
    return Parsed(TRADES, build_table(TRADES, values, table.num_rows))


def _is_okx_header(line: str) -> bool:
    fields = line.split(",")
    return len(fields) == 5 and all(
        field.lower().startswith(name) for field, name in zip(fields, OKX_COLUMNS, strict=True)
    )


class MarketTradesImporter:
    """tardis.dev, Bybit and OKX trade CSVs and nautilus_trader trade Parquet files."""

    name = "market-trades"

    def sniff(self, path: Path, head: bytes) -> bool:
        return self._kind(path, head) is not None

    @staticmethod
    def _kind(path: Path, head: bytes) -> str | None:
        if path.suffix.lower() == ".parquet":
            try:
                names = set(pq.read_schema(path).names)
            except (pa.ArrowException, OSError):
                return None
            return "nautilus" if NAUTILUS_TRADE_COLUMNS <= names else None
        line = first_line(text_head(path, head))
        if line == TARDIS_TRADES_HEADER:
            return "tardis"
        if line == BYBIT_HEADER:
            return "bybit"
        if _is_okx_header(line):
            return "okx"
        return None

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with path.open("rb") as handle:
            kind = self._kind(path, handle.read(4096))
        readers = {
            "tardis": read_tardis,
            "bybit": read_bybit,
            "okx": read_okx,
            "nautilus": read_nautilus_trades,
        }
        if kind is None:
            raise source_error(path, "not a tardis.dev, Bybit, OKX or nautilus trades file")
        return [readers[kind](path, hints)]


IMPORTERS = [MarketTradesImporter()]
