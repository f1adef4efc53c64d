"""freqtrade data files: OHLCV and trades as json, json.gz, feather or parquet.

freqtrade names files ``<PAIR>-<timeframe>[-<candle type>].<ext>`` and
``<PAIR>-trades.<ext>``, with the pair as ``XRP_ETH`` (spot) or ``XRP_USDT_USDT``
(futures, settle last), and keeps them in ``<datadir>/<exchange>[/futures]/``. So the file
name gives the symbol and timeframe, and the folder the exchange when it is named after one;
otherwise ``--exchange`` must.

Values: JSON files hold numbers as JSON text, which is kept exactly; feather and parquet
hold binary floats, which are taken at their shortest round-trip text. A JSON list of ccxt
trade objects whose ``info`` is a raw Binance aggTrade (``a p q f l T m``) is imported as
Binance aggregated trades from ``info``'s exact strings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq

from ..datasets import OHLCV, TRADES
from ..errors import SourceError
from . import Hints, Parsed
from .convert import build_table, source_error
from .symbols import freqtrade_pair
from .tabular import (
    booleans,
    decimals,
    epoch_times,
    integers,
    need_exchange,
    path_exchange,
    read_payload,
    require,
    sides,
    synthesized_ids,
)

_EXT = r"\.(?P<ext>json|json\.gz|jsongz|feather|parquet)$"
_OHLCV_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,3})-(?P<timeframe>\d+[smhdwMy])"
    r"(?:-(?P<candle>spot|futures))?" + _EXT
)
_TRADES_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,3})-trades(?:-(?P<candle>spot|futures))?" + _EXT
)
OHLCV_FIELDS = ("date", "open", "high", "low", "close", "volume")
TRADE_FIELDS = ("timestamp", "id", "type", "side", "price", "amount", "cost")
_BINANCE_AGG_KEYS = {"a", "p", "q", "f", "l", "T", "m"}


def _load_json(path: Path) -> Any:
    """Parsed JSON with every non-integer number kept as its text."""
    try:
        return json.loads(read_payload(path), parse_float=str)
    except (ValueError, UnicodeDecodeError) as exc:
        raise source_error(path, f"not valid JSON: {exc}") from exc


def _load_arrow(path: Path, ext: str) -> pa.Table:
    try:
        return feather.read_table(path) if ext == "feather" else pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise source_error(path, f"cannot read the {ext} file: {exc}") from exc


def rows_to_columns(path: Path, rows: Any, names: tuple[str, ...]) -> dict[str, pa.Array]:
    """Columns from a JSON list of equal-length lists, as Arrow arrays of text or ints."""
    if not isinstance(rows, list):
        raise source_error(path, "expected a JSON array of rows")
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            raise source_error(
                path, f"row {index + 1} is not a list of {len(names)} values: {row!r:.80}"
            )
    columns: dict[str, pa.Array] = {}
    for position, name in enumerate(names):
        values = [row[position] for row in rows]
        if all(isinstance(value, int) or value is None for value in values):
            columns[name] = pa.array(values, pa.int64())
        else:
            columns[name] = pa.array(
                [None if value is None else str(value) for value in values], pa.string()
            )
    return columns


def _time_column(path: Path, values: pa.Array | pa.ChunkedArray, what: str) -> pa.Array:
    """timestamp[ns] from an Arrow timestamp column or integer epoch values."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_timestamp(values.type):
        require(path, values, what, None)
        return pc.cast(pc.cast(values, pa.timestamp(values.type.unit)), pa.timestamp("ns"))
    return epoch_times(path, values, what, None)[0]


class _Names:
    """What a freqtrade file name and folder say."""

    def __init__(self, path: Path, hints: Hints, match: re.Match[str]) -> None:
        self.ext = match["ext"]
        try:
            self.symbol = freqtrade_pair(match["pair"])
        except SourceError as exc:
            raise source_error(path, str(exc)) from None
        how = "freqtrade files say it only by their folder, data/<exchange>/"
        self.exchange = need_exchange(path, path_exchange(path), hints, how)[0]
        if match["candle"] == "futures" and ":" not in self.symbol:
            raise source_error(path, f"a futures file whose pair {match['pair']!r} has no settle")


def read_ohlcv(path: Path, hints: Hints, match: re.Match[str]) -> Parsed:
    """Candles ``[ms, open, high, low, close, volume]`` or a ``date``/OHLCV table."""
    names = _Names(path, hints, match)
    if names.ext in ("feather", "parquet"):
        table = _load_arrow(path, names.ext)
        missing = [name for name in OHLCV_FIELDS if name not in table.column_names]
        if missing:
            raise source_error(path, f"missing columns {', '.join(missing)}")
        columns = {name: table[name] for name in OHLCV_FIELDS}
        rows = table.num_rows
    else:
        columns = rows_to_columns(path, _load_json(path), OHLCV_FIELDS)
        rows = len(columns["date"])
    # JSON numbers are binary floats written as text (see decimals' from_float).
    is_json = names.ext not in ("feather", "parquet")
    values: dict[str, object] = {
        "exchange": names.exchange,
        "symbol": names.symbol,
        "timeframe": match["timeframe"],
        "price_type": "trade",
        "time": _time_column(path, columns["date"], "candle time"),
        "volume": decimals(path, columns["volume"], "volume", None, from_float=is_json),
    }
    for name in ("open", "high", "low", "close"):
        column = decimals(path, columns[name], name, None, from_float=is_json)
        values[name] = require(path, column, name, None)
    return Parsed(OHLCV, build_table(OHLCV, values, rows))


def trades_table(
    path: Path,
    exchange: str,
    symbol: str,
    columns: dict[str, Any],
    first: int | None,
    from_float: bool = False,
) -> pa.Table:
    """A trades table from freqtrade's trade columns (timestamp ms, id, side, price...).

    ``from_float``: text columns are JSON numbers (binary floats), not decimal text.
    """
    times = epoch_times(path, columns["timestamp"], "timestamp", first, "ms")[0]
    ids = columns.get("id")
    if ids is not None:
        ids = pc.cast(ids, pa.string())
        empty = pc.fill_null(pc.equal(ids, ""), True)
        if pc.any(empty).as_py():
            ids = pc.if_else(empty, synthesized_ids(times), ids)
    else:
        ids = synthesized_ids(times)
    values: dict[str, object] = {
        "exchange": exchange,
        "symbol": symbol,
        "time": times,
        "trade_id": ids,
        "side": sides(path, columns["side"], "side", first) if "side" in columns else None,
        "aggregated": False,
    }
    for name in ("price", "amount", "cost"):
        if name in columns:
            values[name] = decimals(path, columns[name], name, first, from_float=from_float)
    require(path, values["price"], "price", first)
    require(path, values["amount"], "amount", first)
    return build_table(TRADES, values, len(times))


def _binance_agg_trades(path: Path, objects: list[dict[str, Any]]) -> pa.Table:
    """ccxt trade objects wrapping raw Binance aggTrades, from ``info``'s exact values."""
    infos = [item["info"] for item in objects]
    symbols = {item.get("symbol") for item in objects}
    if len(symbols) != 1 or not isinstance(next(iter(symbols)), str):
        raise source_error(path, f"expected one symbol in the trade objects, found {symbols}")
    symbol = next(iter(symbols))

    def column(key: str, kind: pa.DataType) -> pa.Array:
        return pa.array([info.get(key) for info in infos], kind)

    buyer_maker = booleans(path, column("m", pa.bool_()), "info.m", None)
    values: dict[str, object] = {
        "exchange": "binance",
        "symbol": symbol,
        "time": epoch_times(path, column("T", pa.int64()), "info.T", None, "ms")[0],
        "trade_id": pc.cast(column("a", pa.int64()), pa.string()),
        "side": pc.if_else(buyer_maker, "sell", "buy"),
        "price": decimals(path, column("p", pa.string()), "info.p", None),
        "amount": decimals(path, column("q", pa.string()), "info.q", None),
        "is_buyer_maker": buyer_maker,
        "aggregated": True,
        "first_trade_id": integers(path, column("f", pa.int64()), "info.f", None),
        "last_trade_id": integers(path, column("l", pa.int64()), "info.l", None),
        "is_best_match": column("M", pa.bool_()),
    }
    return build_table(TRADES, values, len(infos))


def _ccxt_objects(path: Path, hints: Hints, objects: list[Any]) -> Parsed:
    if not all(isinstance(item, dict) and isinstance(item.get("info"), dict) for item in objects):
        raise source_error(path, "expected a JSON array of ccxt trade objects with 'info'")
    if all(_BINANCE_AGG_KEYS <= item["info"].keys() for item in objects):
        return Parsed(TRADES, _binance_agg_trades(path, objects))
    raise source_error(
        path,
        "ccxt trade objects whose 'info' is not a raw Binance aggTrade (a, p, q, f, l, T, m) "
        "are not supported; export them as freqtrade trade lists instead",
    )


def read_trades(path: Path, hints: Hints, match: re.Match[str]) -> Parsed:
    """freqtrade trades: lists or a table of timestamp, id, type, side, price, amount, cost."""
    ext = match["ext"]
    if ext in ("feather", "parquet"):
        table = _load_arrow(path, ext)
        columns = {name: table[name].combine_chunks() for name in table.column_names}
    else:
        loaded = _load_json(path)
        if isinstance(loaded, list) and loaded and isinstance(loaded[0], dict):
            return _ccxt_objects(path, hints, loaded)
        columns = rows_to_columns(path, loaded, TRADE_FIELDS)
    missing = [n for n in ("timestamp", "price", "amount") if n not in columns]
    if missing:
        raise source_error(path, f"missing columns {', '.join(missing)}")
    names = _Names(path, hints, match)
    is_json = ext not in ("feather", "parquet")
    table = trades_table(path, names.exchange, names.symbol, columns, None, is_json)
    return Parsed(TRADES, table)


class FreqtradeImporter:
    """freqtrade OHLCV and trades files (json, json.gz, feather, parquet)."""

    name = "freqtrade"

    def sniff(self, path: Path, head: bytes) -> bool:
        return bool(_OHLCV_NAME.match(path.name) or _TRADES_NAME.match(path.name))

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        trades = _TRADES_NAME.match(path.name)
        if trades is not None:
            return [read_trades(path, hints, trades)]
        ohlcv = _OHLCV_NAME.match(path.name)
        if ohlcv is None:
            raise source_error(path, "not a freqtrade file name")
        return [read_ohlcv(path, hints, ohlcv)]


IMPORTERS = [FreqtradeImporter()]
