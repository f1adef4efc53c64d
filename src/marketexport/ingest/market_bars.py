"""Candle files in other projects' layouts: plain OHLCV CSV, CryptoDataDownload, Coinbase.

- Plain OHLCV CSV (nautilus_trader's bar files, backtesting.py's and other pandas dumps):
  a header ``<time>,open,high,low,close,volume`` in any letter case, where the time column
  may be unnamed. Times are ISO dates or date-times; without an offset they are UTC. A file
  whose every date is the last day of a month is monthly with period-end labels (as
  backtesting.py's BTCUSD.csv): its candles are stored under their open time, the first of
  the month, with timeframe ``1M``. The exchange is never in these files (``--exchange``);
  the symbol comes from the file name when it maps, else ``--symbol``.
- CryptoDataDownload CSV: a preamble line, then ``date,symbol,open,high,low,close,
  volume_<BASE>,volume`` with 12-hour dates (``2019-10-17 09-AM``), newest first; the file
  name says the exchange and timeframe (``Coinbase_BTCUSD_1h.csv``).
- Coinbase Exchange candles JSON (``GET /products/<id>/candles``): rows
  ``[time_s, low, high, open, close, volume]``, newest first; the product id and the
  granularity come from the file name (``candles_BTC-USD_granularity60.json``) or
  ``--symbol``.
The timeframe comes from the file name, else from the smallest step between candles.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import OHLCV
from ..timeparse import datetime_to_ns
from . import Hints, Parsed
from .convert import ConvertError, build_table, epoch_to_ns, source_error
from .freqtrade import rows_to_columns
from .tabular import (
    at_lines,
    decimals,
    epoch_times,
    first_line,
    need_exchange,
    need_symbol,
    read_csv_strings,
    read_payload,
    require,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PRICES = ("open", "high", "low", "close")
_TIMEFRAME = re.compile(r"(?:^|[_\-.])(?P<tf>\d+(?:s|m|h|d|w|M))(?=$|[_\-.])")
_CDD_TIMEFRAMES = {"d": "1d", "minute": "1m", "hour": "1h"}
_CDD_HOUR = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2}) (?P<hour>\d{2})-(?P<half>AM|PM)$")
_CDD_PREAMBLE = "cryptodatadownload"
_PRODUCT = re.compile(r"(?:^|_)(?P<product>[A-Za-z0-9]+-[A-Za-z0-9]+)(?=_|\.|$)")


def timeframe_of_step(step_ns: int) -> str:
    """A timeframe such as 1m, 4h, 1d or 1w for a step between candles."""
    seconds = step_ns // 1_000_000_000
    if seconds > 0 and seconds % 604_800 == 0:
        return f"{seconds // 604_800}w"
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "m")):
        if seconds > 0 and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def timeframe_for(path: Path, times: pa.Array, named: str | None) -> str:
    """The timeframe the file name gives, else the smallest step between candle times."""
    if named:
        return named
    distinct = pc.unique(pc.cast(times, pa.int64())).sort().to_pylist()
    steps = [later - earlier for earlier, later in zip(distinct, distinct[1:], strict=False)]
    if not steps:
        raise source_error(path, "timeframe unknown: put it in the file name (e.g. _1m)")
    return timeframe_of_step(min(steps))


def _named_timeframe(path: Path) -> str | None:
    match = _TIMEFRAME.search(path.stem)
    return match["tf"] if match else None


def _parse_instant(text: str) -> int:
    """ns for an ISO date or date-time; no offset means UTC."""
    value = text.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime_to_ns(datetime(day.year, day.month, day.day, tzinfo=UTC))
    return datetime_to_ns(datetime.fromisoformat(value))


def _iso_times(path: Path, values: pa.Array, first: int) -> list[int]:
    nanos: list[int] = []
    for index, text in enumerate(values.to_pylist()):
        try:
            nanos.append(_parse_instant(text))
        except (ValueError, TypeError):
            with at_lines(path, first):
                raise ConvertError(
                    f"time {text!r} is not an ISO date or date-time", index
                ) from None
    return nanos


def _month_open(ns_values: list[int]) -> list[int] | None:
    """Open times (first of the month) when every time is a month's last day, else None."""
    opens: list[int] = []
    for ns in ns_values:
        moment = _EPOCH + timedelta(microseconds=ns // 1000)
        if ns % 86_400_000_000_000 or (moment + timedelta(days=1)).day != 1:
            return None
        opens.append(datetime_to_ns(moment.replace(day=1)))
    return opens if len(opens) > 1 else None


def _candles(
    path: Path, table: pa.Table, first: int | None, from_float: bool = False
) -> dict[str, object]:
    """Decimal price columns, checked to be non-empty and ordered low <= open, close <= high."""
    columns: dict[str, object] = {}
    for name in PRICES:
        column = decimals(path, table[name], name, first, from_float=from_float)
        columns[name] = require(path, column, name, first)
    low, high = columns["low"], columns["high"]
    ordered = pc.and_(
        pc.less_equal(low, pc.min_element_wise(columns["open"], columns["close"])),
        pc.greater_equal(high, pc.max_element_wise(columns["open"], columns["close"])),
    )
    if not pc.all(ordered).as_py():
        index = pc.index(ordered, False).as_py()
        with at_lines(path, first):
            raise ConvertError(
                "low above open/close or high below them: wrong column order?", index
            )
    return columns


def read_plain_csv(path: Path, hints: Hints, header: list[str]) -> Parsed:
    """A ``<time>,open,high,low,close,volume`` CSV without exchange in it."""
    how = "a plain OHLCV CSV does not say it"
    exchange, market = need_exchange(path, None, hints, how)
    native = re.split(r"[_\-]\d", path.stem)[0] or None
    symbol = need_symbol(path, native, exchange, market, hints, how)
    names = ("time", *PRICES, "volume")
    table = read_csv_strings(path, read_payload(path), names, skip_rows=1)
    nanos = _iso_times(path, table["time"], 2)
    named = _named_timeframe(path)
    monthly = _month_open(nanos) if named in (None, "1M") else None
    if monthly is not None:
        nanos, named = monthly, "1M"
    times = epoch_to_ns(nanos, "ns")
    columns = {
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": timeframe_for(path, times, named),
        "price_type": "trade",
        "time": times,
        "volume": decimals(path, table["volume"], "volume", 2),
        **_candles(path, table, 2),
    }
    return Parsed(OHLCV, build_table(OHLCV, columns, table.num_rows))


def _cdd_time(text: str) -> int:
    match = _CDD_HOUR.match(text.strip())
    if match is None:
        return _parse_instant(text)
    hour = int(match["hour"]) % 12 + (12 if match["half"] == "PM" else 0)
    day = date.fromisoformat(match["day"])
    return datetime_to_ns(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


def read_cdd(path: Path, hints: Hints, data: bytes) -> Parsed:
    """A CryptoDataDownload CSV (preamble line, 12-hour dates, newest first)."""
    header = data.split(b"\n", 2)[1].decode("utf-8", errors="replace").strip().lower()
    names = [name.strip().replace(" ", "_") for name in header.split(",")]
    missing = [n for n in ("date", "symbol", *PRICES) if n not in names]
    if missing:
        raise source_error(path, f"missing columns {', '.join(missing)}", 2)
    table = read_csv_strings(path, data, names, skip_rows=2)
    parts = path.stem.split("_")
    stated = parts[0] if len(parts) >= 3 else None
    exchange, market = need_exchange(path, stated, hints, "the file name should start with it")
    native = pc.unique(table["symbol"]).to_pylist()
    if len(native) != 1:
        raise source_error(path, f"expected one symbol in the file, found {native[:5]}")
    symbol = need_symbol(path, native[0], exchange, market, hints, "")
    base, quote = symbol.split(":")[0].split("/")
    nanos: list[int] = []
    for index, text in enumerate(table["date"].to_pylist()):
        try:
            nanos.append(_cdd_time(text))
        except ValueError:
            with at_lines(path, 3):
                raise ConvertError(f"date {text!r} is not 'YYYY-MM-DD hh-AM'", index) from None
    times = epoch_to_ns(nanos, "ns")
    named = _CDD_TIMEFRAMES.get(parts[-1], parts[-1]) if len(parts) >= 3 else None
    columns: dict[str, object] = {
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": timeframe_for(path, times, named if _TIMEFRAME.match(named or "") else None),
        "price_type": "trade",
        "time": times,
        **_candles(path, table, 3),
    }
    base_name, quote_name = f"volume_{base.lower()}", f"volume_{quote.lower()}"
    if base_name in names:
        columns["volume"] = decimals(path, table[base_name], base_name, 3)
    # CryptoDataDownload calls the quote volume plain "volume" next to volume_<BASE>.
    quote_column = quote_name if quote_name in names else "volume" if base_name in names else None
    if quote_column:
        columns["quote_volume"] = decimals(path, table[quote_column], quote_column, 3)
    return Parsed(OHLCV, build_table(OHLCV, columns, table.num_rows))


def read_coinbase_candles(path: Path, hints: Hints) -> Parsed:
    """Coinbase Exchange candles: ``[time_s, low, high, open, close, volume]`` rows."""
    try:
        rows = json.loads(read_payload(path), parse_float=str)
    except (ValueError, UnicodeDecodeError) as exc:
        raise source_error(path, f"not valid JSON: {exc}") from exc
    table = pa.table(
        rows_to_columns(path, rows, ("time", "low", "high", "open", "close", "volume"))
    )
    match = _PRODUCT.search(path.stem)
    how = "Coinbase candles name the product only in the request, e.g. candles_BTC-USD_..."
    symbol = need_symbol(path, match["product"] if match else None, "coinbase", None, hints, how)
    times = epoch_times(path, table["time"], "time", None, "s")[0]
    granularity = re.search(r"granularity(\d+)", path.stem)
    named = timeframe_of_step(int(granularity[1]) * 1_000_000_000) if granularity else None
    columns: dict[str, object] = {
        "exchange": "coinbase",
        "symbol": symbol,
        "timeframe": timeframe_for(path, times, named),
        "price_type": "trade",
        "time": times,
        "volume": decimals(path, table["volume"], "volume", None, from_float=True),
        **_candles(path, table, None, from_float=True),
    }
    return Parsed(OHLCV, build_table(OHLCV, columns, table.num_rows))


def _plain_header(line: str) -> list[str] | None:
    names = [name.strip().lower() for name in line.split(",")]
    return names if len(names) == 6 and names[1:] == [*PRICES, "volume"] else None


def _is_coinbase_candles(path: Path, head: bytes) -> bool:
    if not path.name.lower().endswith(".json"):
        return False
    match = re.match(rb"\s*\[\s*\[\s*(\d+)\s*,", head)
    return match is not None and len(match[1]) <= 11


class MarketBarsImporter:
    """Plain OHLCV CSV, CryptoDataDownload CSV and Coinbase candles JSON."""

    name = "market-bars"

    def sniff(self, path: Path, head: bytes) -> bool:
        return self._kind(path, head) is not None

    @staticmethod
    def _kind(path: Path, head: bytes) -> str | None:
        if _is_coinbase_candles(path, head):
            return "coinbase"
        if not path.name.lower().endswith(".csv"):
            return None
        line = first_line(head)
        if _CDD_PREAMBLE in line.lower():
            return "cdd"
        return "plain" if _plain_header(line) else None

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        data = read_payload(path)
        kind = self._kind(path, data[:4096])
        if kind == "coinbase":
            return [read_coinbase_candles(path, hints)]
        if kind == "cdd":
            return [read_cdd(path, hints, data)]
        header = _plain_header(first_line(data))
        if header is None:
            raise source_error(path, "not an OHLCV CSV, CryptoDataDownload or Coinbase file", 1)
        return [read_plain_csv(path, hints, header)]


IMPORTERS = [MarketBarsImporter()]
