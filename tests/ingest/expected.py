"""The rows each real file should become, read WITHOUT marketexport.

Every reader here uses only the standard library (csv, json, gzip), pandas or pyarrow, and
the layouts written down in ../shared/data/real/SOURCES.md. Values are Python values in the
store's terms: times as integer nanoseconds (UTC), prices and amounts as ``Decimal`` of the
source text (for binary floats: of their shortest repr, i.e. the JSON text), ids as text.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from marketexport.datasets import DECIMAL_TYPE

Row = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS, US, S = 1_000_000, 1000, 1_000_000_000


def store_decimal(value: Decimal) -> Decimal:
    """A float-derived decimal as the store keeps it: at most 22 places, half-even
    (the documented limit of decimal128(38, 22); text sources never need it here)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_TYPE.scale:
        return value.quantize(
            Decimal(1).scaleb(-DECIMAL_TYPE.scale), ROUND_HALF_EVEN, Context(prec=80)
        )
    return value


def float_decimal(value: float | int | None) -> Decimal | None:
    """Decimal of a binary float's shortest repr (what a JSON writer prints)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return store_decimal(Decimal(repr(value)) if isinstance(value, float) else Decimal(value))


def ns_of(moment: datetime) -> int:
    """Integer nanoseconds of an aware datetime (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * S + delta.microseconds * US


@dataclass(frozen=True)
class Case:
    """One real file: how to import it and what it must become."""

    path: str
    dataset: str
    exchange: str
    symbol: str
    reader: Callable[[Path], list[Row]]
    hints: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    slow: bool = False

    @property
    def name(self) -> str:
        return self.path

    def expected(self, real: Path) -> list[Row]:
        fixed = {"exchange": self.exchange, "symbol": self.symbol, **self.constants}
        return [{**fixed, **row} for row in self.reader(real / self.path)]


def _csv_rows(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    with path.open(newline="", encoding=encoding, errors="replace") as handle:
        return [row for row in csv.reader(handle) if row]


def _drop_header(rows: list[list[str]]) -> list[list[str]]:
    first = rows[0][0]
    return rows if first.replace(".", "", 1).isdigit() else rows[1:]


def _epoch(text: str) -> int:
    """ns of a Binance epoch number: 16 digits are microseconds, 13 milliseconds."""
    return int(text) * (US if len(text) >= 16 else MS)


def binance_klines(coin_margined: bool = False) -> Callable[[Path], list[Row]]:
    def read(path: Path) -> list[Row]:
        out = []
        for row in _drop_header(_csv_rows(path)):
            item: Row = {"time": _epoch(row[0]), "trades": int(row[8])}
            for name, index in (("open", 1), ("high", 2), ("low", 3), ("close", 4)):
                item[name] = Decimal(row[index])
            item["volume"] = Decimal(row[5])
            item["taker_buy_volume"] = Decimal(row[9])
            if not coin_margined:
                item["quote_volume"] = Decimal(row[7])
                item["taker_buy_quote_volume"] = Decimal(row[10])
            out.append(item)
        return out

    return read


def binance_trades(path: Path) -> list[Row]:
    out = []
    for row in _drop_header(_csv_rows(path)):
        maker = row[5].lower() == "true"
        item: Row = {
            "trade_id": row[0],
            "price": Decimal(row[1]),
            "amount": Decimal(row[2]),
            "cost": Decimal(row[3]),
            "time": _epoch(row[4]),
            "is_buyer_maker": maker,
            "side": "sell" if maker else "buy",
            "aggregated": False,
        }
        if len(row) == 7:
            item["is_best_match"] = row[6].lower() == "true"
        out.append(item)
    return out


def binance_agg_trades(path: Path) -> list[Row]:
    out = []
    for row in _drop_header(_csv_rows(path)):
        maker = row[6].lower() == "true"
        item: Row = {
            "trade_id": row[0],
            "price": Decimal(row[1]),
            "amount": Decimal(row[2]),
            "first_trade_id": int(row[3]),
            "last_trade_id": int(row[4]),
            "time": _epoch(row[5]),
            "is_buyer_maker": maker,
            "side": "sell" if maker else "buy",
            "aggregated": True,
        }
        if len(row) == 8:
            item["is_best_match"] = row[7].lower() == "true"
        out.append(item)
    return out


def _load_json(path: Path) -> Any:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return json.load(handle, parse_float=Decimal)


def _json_number(value: Any) -> Decimal:
    return store_decimal(value if isinstance(value, Decimal) else Decimal(value))


def freqtrade_json_ohlcv(path: Path) -> list[Row]:
    names = ("open", "high", "low", "close", "volume")
    return [
        {"time": row[0] * MS, **{n: _json_number(v) for n, v in zip(names, row[1:], strict=True)}}
        for row in _load_json(path)
    ]


def freqtrade_feather_ohlcv(path: Path) -> list[Row]:
    table = feather.read_table(path)
    times = table["date"].cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist()
    columns = {n: table[n].to_pylist() for n in ("open", "high", "low", "close", "volume")}
    return [
        {"time": time, **{n: float_decimal(values[i]) for n, values in columns.items()}}
        for i, time in enumerate(times)
    ]


def freqtrade_json_trades(path: Path) -> list[Row]:
    return [
        {
            "time": row[0] * MS,
            "trade_id": row[1],
            "side": row[3],
            "price": _json_number(row[4]),
            "amount": _json_number(row[5]),
            "cost": _json_number(row[6]),
            "aggregated": False,
        }
        for row in _load_json(path)
    ]


def freqtrade_table_trades(path: Path) -> list[Row]:
    table = feather.read_table(path) if path.suffix == ".feather" else pq.read_table(path)
    return [
        {
            "time": row["timestamp"] * MS,
            "trade_id": row["id"],
            "side": row["side"],
            "price": float_decimal(row["price"]),
            "amount": float_decimal(row["amount"]),
            "cost": float_decimal(row["cost"]),
            "aggregated": False,
        }
        for row in table.to_pylist()
    ]


def ccxt_binance_agg_trades(path: Path) -> list[Row]:
    out = []
    for item in _load_json(path):
        info = item["info"]
        out.append(
            {
                "time": info["T"] * MS,
                "trade_id": str(info["a"]),
                "price": Decimal(info["p"]),
                "amount": Decimal(info["q"]),
                "first_trade_id": info["f"],
                "last_trade_id": info["l"],
                "is_buyer_maker": info["m"],
                "is_best_match": info["M"],
                "side": "sell" if info["m"] else "buy",
                "aggregated": True,
            }
        )
    return out


def kraken_trades(path: Path) -> list[Row]:
    seen: dict[int, int] = {}
    out = []
    for seconds, price, volume in _csv_rows(path):
        ms = int(seconds) * 1000
        n = seen.get(ms, 0)
        seen[ms] = n + 1
        out.append(
            {
                "time": ms * MS,
                "trade_id": f"{ms}-{n}",
                "price": Decimal(price),
                "amount": Decimal(volume),
                "aggregated": False,
            }
        )
    return out


def pandas_public_trades(path: Path) -> list[Row]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=0)
    return [
        {
            "time": int(row["timestamp"]) * MS,
            "trade_id": row["id"],
            "side": row["side"],
            "price": Decimal(row["price"]),
            "amount": Decimal(row["amount"]),
            "cost": Decimal(row["cost"]),
            "aggregated": False,
        }
        for _, row in frame.iterrows()
    ]


def tardis_trades(path: Path) -> list[Row]:
    with path.open(newline="") as handle:
        return [
            {
                "time": int(row["timestamp"]) * US,
                "trade_id": row["id"],
                "side": row["side"],
                "price": Decimal(row["price"]),
                "amount": Decimal(row["amount"]),
                "aggregated": False,
            }
            for row in csv.DictReader(handle)
        ]


def bybit_trades(path: Path) -> list[Row]:
    with path.open(newline="") as handle:
        return [
            {
                "time": int(Decimal(row["timestamp"]) * S),
                "trade_id": row["trdMatchID"],
                "side": row["side"].lower(),
                "price": Decimal(row["price"]),
                "amount": Decimal(row["size"]),
                "cost": Decimal(row["foreignNotional"]),
                "aggregated": False,
            }
            for row in csv.DictReader(handle)
        ]


def okx_trades(path: Path) -> list[Row]:
    return [
        {
            "trade_id": trade_id,
            "side": side,
            "amount": Decimal(size),
            "price": Decimal(price),
            "time": int(created) * MS,
            "aggregated": True,
        }
        for trade_id, side, size, price, created in _csv_rows(path, "utf-8")[1:]
    ]


def nautilus_parquet_trades(path: Path) -> list[Row]:
    table = pq.read_table(path)
    times = table["timestamp"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
    out = []
    for time, row in zip(times, table.to_pylist(), strict=True):
        maker = row["buyer_maker"] == "True"
        out.append(
            {
                "time": time * MS,
                "trade_id": str(row["trade_id"]),
                "price": float_decimal(row["price"]),
                "amount": float_decimal(row["quantity"]),
                "is_buyer_maker": maker,
                "side": "sell" if maker else "buy",
                "aggregated": False,
            }
        )
    return out


def plain_ohlcv_csv(path: Path) -> list[Row]:
    with path.open(newline="") as handle:
        return [
            {
                "time": ns_of(datetime.fromisoformat(row["timestamp"])),
                **{n: Decimal(row[n]) for n in ("open", "high", "low", "close", "volume")},
            }
            for row in csv.DictReader(handle)
        ]


def backtesting_monthly(path: Path) -> list[Row]:
    frame = pd.read_csv(path, dtype=str, index_col=0)
    out = []
    for label, row in frame.iterrows():
        period_end = datetime.strptime(str(label), "%Y-%m-%d")
        out.append(
            {
                "time": ns_of(period_end.replace(day=1)),
                **{n.lower(): Decimal(row[n]) for n in ("Open", "High", "Low", "Close", "Volume")},
            }
        )
    return out


def cdd_hourly(path: Path) -> list[Row]:
    rows = _csv_rows(path)[1:]
    header = rows[0]
    out = []
    for values in rows[1:]:
        row = dict(zip(header, values, strict=True))
        moment = datetime.strptime(row["date"], "%Y-%m-%d %I-%p")
        out.append(
            {
                "time": ns_of(moment),
                **{n: Decimal(row[n]) for n in ("open", "high", "low", "close")},
                "volume": Decimal(row["volume_btc"]),
                "quote_volume": Decimal(row["volume"]),
            }
        )
    return out


def coinbase_candles(path: Path) -> list[Row]:
    return [
        {
            "time": row[0] * S,
            "low": _json_number(row[1]),
            "high": _json_number(row[2]),
            "open": _json_number(row[3]),
            "close": _json_number(row[4]),
            "volume": _json_number(row[5]),
        }
        for row in _load_json(path)
    ]
