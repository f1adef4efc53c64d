"""Binance public-data files (data.binance.vision): klines, trades and aggTrades.

File names say the symbol, the dataset or candle interval and the day or month:
``BTCUSDT-1m-2026-09-15.csv``, ``BTCUSDT-trades-2026-09-15.zip``,
``BTCUSDT-aggTrades-2023-11.zip``. Columns are mapped by position, never by header name
(copies such as bbgo's rename them). A header line is detected by its first field not being
a number. Times are milliseconds, or microseconds in spot files from 2025 on; the unit is
found by magnitude. Prices and amounts are decimal text and are kept exactly.

Spot or futures: a ``spot``/``um``/``cm`` folder in the path, the flags (``--exchange
binanceusdm``, ``--symbol BTC/USDT:USDT``), or the file itself says it. Trades and aggTrades
files tell by their column count (spot files have the extra best-match column); kline files
by the official futures header, by microsecond times (only spot files have them) or by every
price and volume having exactly eight decimals (the spot archive's notation; futures files
use the contract's tick and step sizes). A kline file that shows none of these needs a flag.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import OHLCV, TRADES
from ..errors import SourceError
from . import Hints, Parsed
from .convert import ConvertError, build_table, source_error
from .symbols import unify_symbol
from .tabular import (
    at_lines,
    booleans,
    decimals,
    epoch_times,
    first_line,
    hinted_market,
    integers,
    is_number,
    read_csv_strings,
    read_payload,
)

_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+(?:_[A-Z0-9]+)?)-(?P<kind>trades|aggTrades|\d+(?:s|m|h|d|w|M|mo))"
    r"-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?P<ext>csv|zip)$"
)
_FOLDER_MARKETS = {"spot": "spot", "um": "linear", "cm": "inverse"}
_PRICE_TYPES = {
    "klines": "trade",
    "markPriceKlines": "mark",
    "indexPriceKlines": "index",
    "premiumIndexKlines": "premium_index",
}
KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
FUTURES_KLINE_HEADER = ",".join(KLINE_COLUMNS)
TRADE_COLUMNS = {
    7: ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    6: ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker"),
}
AGG_COLUMNS = {
    8: ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
        "transact_time", "is_buyer_maker", "is_best_match"),
    7: ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
        "transact_time", "is_buyer_maker"),
}  # fmt: skip
_EIGHT_DECIMALS = r"^-?\d+\.\d{8}$"


class BinanceFile:
    """The facts a Binance public-data file gives about itself."""

    def __init__(self, path: Path, hints: Hints) -> None:
        match = _NAME.match(path.name)
        if match is None:
            raise source_error(path, "not a Binance public-data file name")
        self.path = path
        self.native = match["symbol"]
        kind = match["kind"]
        self.kind = kind if kind in ("trades", "aggTrades") else "klines"
        self.timeframe = {"1mo": "1M"}.get(kind, kind) if self.kind == "klines" else None
        parts = set(path.parent.parts)
        folders = [market for folder, market in _FOLDER_MARKETS.items() if folder in parts]
        self.market: str | None = folders[0] if len(folders) == 1 else None
        if self.market is None:
            self.market = hinted_market(hints)
        self.price_type = next(
            (price for folder, price in _PRICE_TYPES.items() if folder in parts), "trade"
        )

    def resolve_market(self, found: str | None, why: str) -> str:
        """The market: the folder's or flag's, checked against what the content says."""
        if (
            found is not None
            and self.market is not None
            and (self.market == "spot") != (found == "spot")
        ):
            raise source_error(
                self.path,
                f"the folder or flags say {self.market} but the content is {found} ({why})",
            )
        market = self.market or found
        if market is None:
            raise SourceError(
                f"{self.path}: market unknown (spot, USD-M or COIN-M futures: the file is not "
                "in a spot/um/cm folder and its content does not tell); give it with "
                "--symbol (BTC/USDT for spot, BTC/USDT:USDT for USD-M futures) or "
                "--exchange binanceusdm / binancecoinm",
                path=str(self.path),
                missing="market",
            )
        if market == "derivative":
            market = "inverse" if re.search(r"USD_", self.native) else "linear"
        return market

    def symbol(self, market: str) -> str:
        try:
            return unify_symbol(self.native, "binance", market)
        except SourceError as exc:
            raise source_error(self.path, str(exc)) from None


def _split_header(path: Path, data: bytes) -> tuple[str | None, int]:
    """The header line (None when the first field is a number) and the field count."""
    line = first_line(data)
    if not line.strip():
        raise source_error(path, "the file is empty", 1)
    fields = line.split(",")
    return (None if is_number(fields[0]) else line), len(fields)


def _read_klines(path: Path, info: BinanceFile, data: bytes) -> Parsed:
    header, width = _split_header(path, data)
    if width != len(KLINE_COLUMNS):
        raise source_error(path, f"{width} fields where a kline file has {len(KLINE_COLUMNS)}", 1)
    skip = 1 if header else 0
    table = read_csv_strings(path, data, KLINE_COLUMNS, skip)
    first = skip + 1
    times, unit = epoch_times(path, table["open_time"], "open time", first)
    epoch_times(path, table["close_time"], "close time", first, unit)

    found = None
    why = ""
    if header is not None and header.strip() == FUTURES_KLINE_HEADER:
        found, why = "derivative", "official futures header"
    elif unit == "us":
        found, why = "spot", "microsecond times"
    elif _all_eight_decimals(table):
        found, why = "spot", "eight-decimal spot notation"
    market = info.resolve_market(found, why)
    symbol = info.symbol(market)

    columns: dict[str, object] = {
        "exchange": "binance",
        "symbol": symbol,
        "timeframe": info.timeframe,
        "price_type": info.price_type,
        "time": times,
        "trades": integers(path, table["count"], "count", first),
    }
    for name in ("open", "high", "low", "close", "volume", "taker_buy_volume"):
        columns[name] = decimals(path, table[name], name, first)
    # COIN-M files hold base-asset volumes in columns 8 and 11 (binance-public-data #267),
    # for which the dataset has no column: they are left out rather than mislabelled.
    if market != "inverse":
        columns["quote_volume"] = decimals(path, table["quote_volume"], "quote volume", first)
        columns["taker_buy_quote_volume"] = decimals(
            path, table["taker_buy_quote_volume"], "taker buy quote volume", first
        )
    _check_candles(path, table, columns, first, info.price_type)
    return Parsed(OHLCV, build_table(OHLCV, columns, table.num_rows))


# Store column -> the kline file's column, for the amounts that must not be negative.
_AMOUNTS = {
    "volume": "volume",
    "quote_volume": "quote_volume",
    "taker_buy_volume": "taker_buy_volume",
    "taker_buy_quote_volume": "taker_buy_quote_volume",
    "trades": "count",
}
_PRICES = ("open", "high", "low", "close")


def _check_candles(
    path: Path, table: pa.Table, columns: dict[str, object], first: int, price_type: str
) -> None:
    """Refuse the file at the first candle that cannot be real: a negative price or amount,
    high below low, or open or close outside [low, high]. A premium index is a rate, below
    zero whenever futures trade under the index, so only its order is checked."""
    signed = {name: name for name in _PRICES} if price_type != "premium_index" else {}
    signed |= {name: text for name, text in _AMOUNTS.items() if name in columns}
    checks: list[tuple[pa.Array, str]] = []
    for name, text in signed.items():
        values = columns[name]
        assert isinstance(values, pa.Array)
        zero = pa.scalar(Decimal(0) if pa.types.is_decimal(values.type) else 0, values.type)
        checks.append((pc.less(values, zero), f"negative {text} {{{text}}}"))
    low, high = columns["low"], columns["high"]
    checks.append((pc.less(high, low), "high {high} is below low {low}"))
    for name in ("open", "close"):
        outside = pc.or_(pc.less(columns[name], low), pc.greater(columns[name], high))
        checks.append((outside, f"{name} {{{name}}} is outside [low {{low}}, high {{high}}]"))

    # The first line with a problem, and its first problem; values as the file wrote them.
    found = [(pc.index(bad, True).as_py(), i) for i, (bad, _) in enumerate(checks)]
    found = [(row, i) for row, i in found if row >= 0]
    if not found:
        return
    row, i = min(found)
    shown = {text: table[text][row].as_py() for text in (*_PRICES, *signed.values())}
    with at_lines(path, first):
        raise ConvertError(f"{checks[i][1].format(**shown)}: not a real candle", row)


def _all_eight_decimals(table: pa.Table) -> bool:
    for name in ("open", "high", "low", "close", "volume"):
        if not pc.all(pc.match_substring_regex(table[name], _EIGHT_DECIMALS)).as_py():
            return False
    return True


def _read_trades(path: Path, info: BinanceFile, data: bytes) -> Parsed:
    header, width = _split_header(path, data)
    layouts = TRADE_COLUMNS if info.kind == "trades" else AGG_COLUMNS
    if width not in layouts:
        expected = " or ".join(str(count) for count in sorted(layouts))
        raise source_error(path, f"{width} fields where a {info.kind} file has {expected}", 1)
    names = layouts[width]
    skip = 1 if header else 0
    first = skip + 1
    table = read_csv_strings(path, data, names, skip)
    is_spot = width == max(layouts)
    market = info.resolve_market(
        "spot" if is_spot else "derivative",
        "best-match column" if is_spot else "no best-match column",
    )
    if is_spot != (market == "spot"):
        raise source_error(path, f"a {market} market but the columns of a spot file")
    symbol = info.symbol(market)
    coin_margined = market == "inverse" or (header is not None and "base_qty" in header)

    id_name, time_name = names[0], names[5 if info.kind == "aggTrades" else 4]
    times, _unit = epoch_times(path, table[time_name], "time", first)
    buyer_maker = booleans(path, table["is_buyer_maker"], "is_buyer_maker", first)
    amount_name = "qty" if info.kind == "trades" else "quantity"
    columns: dict[str, object] = {
        "exchange": "binance",
        "symbol": symbol,
        "time": times,
        "trade_id": pc.cast(integers(path, table[id_name], "trade id", first), pa.string()),
        "side": pc.if_else(buyer_maker, "sell", "buy"),
        "price": decimals(path, table["price"], "price", first),
        "amount": decimals(path, table[amount_name], "quantity", first),
        "is_buyer_maker": buyer_maker,
        "aggregated": info.kind == "aggTrades",
    }
    if info.kind == "trades" and not coin_margined:
        columns["cost"] = decimals(path, table["quote_qty"], "quote quantity", first)
    if info.kind == "aggTrades":
        for name in ("first_trade_id", "last_trade_id"):
            columns[name] = integers(path, table[name], name.replace("_", " "), first)
    if is_spot:
        columns["is_best_match"] = booleans(path, table["is_best_match"], "best match", first)
    return Parsed(TRADES, build_table(TRADES, columns, table.num_rows))


class BinanceImporter:
    """Klines, trades and aggTrades CSV files (plain or zipped) from data.binance.vision."""

    name = "binance-public-data"

    def sniff(self, path: Path, head: bytes) -> bool:
        match = _NAME.match(path.name)
        if match is None:
            return False
        if match["ext"] == "zip":
            return head.startswith(b"PK")
        return True

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        info = BinanceFile(path, hints)
        data = read_payload(path)
        if info.kind == "klines":
            return [_read_klines(path, info, data)]
        return [_read_trades(path, info, data)]


IMPORTERS = [BinanceImporter()]
