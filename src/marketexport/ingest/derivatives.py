"""Derivatives extras: freqtrade mark/index/funding candles and Binance UM ``metrics``.

- freqtrade ``<PAIR>-<timeframe>-mark|index|premiumIndex.<ext>``: mark (index, premium
  index) price candles -> ``ohlcv`` with price_type mark (index, premium_index), where
  candles are looked for; a NaN volume (mark candles have none) becomes empty.
- freqtrade ``<PAIR>-<timeframe>-funding_rate.<ext>``: funding rates stored in candle
  shape (``open`` = rate, the other columns 0) -> the ``funding`` dataset, one row per
  funding event at the time freqtrade stored (Binance's millisecond jitter kept), with
  the file's timeframe as the funding interval.
- Binance USD-M public-data ``metrics`` CSV -> the ``open_interest`` dataset.

freqtrade files (feather, parquet, json, json.gz) name no exchange: it comes from the
folder (``data/<exchange>/futures/``) or ``--exchange``. Float values are taken at their
shortest round-trip text.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq

from ..datasets import FUNDING, OHLCV, OPEN_INTEREST
from . import Hints, Parsed
from .book_binance import futures_symbol, text_times_to_ns
from .convert import build_table, source_error
from .records import load_json, naming_file, need_exchange
from .symbols import freqtrade_pair, normalize_exchange
from .tabular import decimals, first_line, path_exchange, read_csv_strings, read_payload, require

_FREQTRADE = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,3})-(?P<timeframe>\d+[smhdwM])"
    r"-(?P<kind>mark|index|premiumIndex|funding_rate)"
    r"\.(?P<ext>feather|parquet|json|json\.gz|jsongz)$"
)
PRICE_TYPES = {"mark": "mark", "index": "index", "premiumIndex": "premium_index"}
CANDLE_FIELDS = ("date", "open", "high", "low", "close", "volume")
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,"
    "count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,"
    "count_long_short_ratio,sum_taker_long_short_vol_ratio"
)
HOURS = {"h": 1, "d": 24, "w": 168}


def load_candles(path: Path, ext: str) -> dict[str, Any]:
    """freqtrade candle columns: Arrow arrays (feather, parquet) or lists from JSON."""
    if ext in ("feather", "parquet"):
        try:
            table = feather.read_table(path) if ext == "feather" else pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise source_error(path, f"cannot read the {ext} file: {exc}") from None
        missing = [name for name in CANDLE_FIELDS if name not in table.column_names]
        if missing:
            raise source_error(path, f"missing columns {', '.join(missing)}")
        times = table["date"].combine_chunks()
        if not pa.types.is_timestamp(times.type):
            raise source_error(path, f"date column is {times.type}, not a timestamp")
        columns: dict[str, Any] = {name: table[name] for name in CANDLE_FIELDS[1:]}
        columns["date"] = pc.cast(pc.cast(times, pa.timestamp(times.type.unit)), "timestamp[ns]")
        return columns
    data = gzip.decompress(path.read_bytes()) if ext in ("json.gz", "jsongz") else None
    rows = load_json(path, data)
    if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 6 for r in rows):
        raise source_error(path, "expected a JSON array of [ms, open, high, low, close, volume]")
    columns = {name: [row[i] for row in rows] for i, name in enumerate(CANDLE_FIELDS)}
    ms = [int(value) for value in columns["date"]]
    columns["date"] = pa.array([value * 1_000_000 for value in ms], pa.timestamp("ns"))
    for name in CANDLE_FIELDS[1:]:
        columns[name] = pa.array([None if v is None else str(v) for v in columns[name]])
    return columns


def freqtrade_exchange(path: Path, hints: Hints) -> str:
    """The exchange of a freqtrade file: its data folder, else --exchange."""
    folder = path_exchange(path)
    if folder is not None:
        return normalize_exchange(folder)[0]
    return normalize_exchange(need_exchange(hints, path, "a freqtrade file"))[0]


def read_freqtrade(path: Path, hints: Hints, match: re.Match[str]) -> Parsed:
    """A freqtrade mark/index/premium or funding-rate file."""
    exchange = freqtrade_exchange(path, hints)
    symbol = freqtrade_pair(match["pair"])
    columns = load_candles(path, match["ext"])
    rows = len(columns["date"])
    if match["kind"] == "funding_rate":
        timeframe = match["timeframe"]
        unit = HOURS.get(timeframe[-1])
        values: dict[str, Any] = {
            "exchange": exchange,
            "symbol": symbol,
            "time": columns["date"],
            "rate": require(path, decimals(path, columns["open"], "rate", None), "rate", None),
            "interval_hours": int(timeframe[:-1]) * unit if unit else None,
        }
        return Parsed(FUNDING, build_table(FUNDING, values, rows))
    values = {
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": match["timeframe"],
        "price_type": PRICE_TYPES[match["kind"]],
        "time": columns["date"],
        "volume": decimals(path, columns["volume"], "volume", None),
    }
    for name in ("open", "high", "low", "close"):
        values[name] = require(path, decimals(path, columns[name], name, None), name, None)
    return Parsed(OHLCV, build_table(OHLCV, values, rows))


def read_metrics(path: Path) -> Parsed:
    """A Binance UM metrics CSV as open_interest rows."""
    data = read_payload(path)
    table = read_csv_strings(path, data, METRICS_HEADER.split(","), skip_rows=1)
    natives = table["symbol"].to_pylist()
    mapped = {native: futures_symbol(native) for native in set(natives)}
    columns: dict[str, Any] = {
        "exchange": "binance",
        "symbol": pa.array([mapped[native] for native in natives], pa.string()),
        "time": text_times_to_ns(path, table["create_time"].combine_chunks(), "create_time"),
        "open_interest": decimals(path, table["sum_open_interest"], "sum_open_interest", 2),
        "open_interest_value": decimals(
            path, table["sum_open_interest_value"], "sum_open_interest_value", 2
        ),
    }
    for name in METRICS_HEADER.split(",")[4:]:
        columns[name] = decimals(path, table[name], name, 2)
    return Parsed(OPEN_INTEREST, build_table(OPEN_INTEREST, columns, table.num_rows))


class DerivativesImporter:
    """freqtrade mark/index/funding-rate files and Binance UM metrics CSVs."""

    name = "derivatives-extras"

    def sniff(self, path: Path, head: bytes) -> bool:
        if _FREQTRADE.match(path.name):
            return True
        if path.name.endswith(".zip"):
            return "-metrics-" in path.name and head.startswith(b"PK")
        return path.name.endswith(".csv") and first_line(head) == METRICS_HEADER

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            match = _FREQTRADE.match(path.name)
            if match is not None:
                return [read_freqtrade(path, hints, match)]
            header = first_line(read_payload(path)[:4096])
            if header != METRICS_HEADER:
                raise source_error(path, f"header {header[:80]!r} is not a Binance metrics file", 1)
            return [read_metrics(path)]


IMPORTERS = [DerivativesImporter()]
