"""Account histories that exchanges and trading bots let a user download.

- bbgo's stored Binance fill history: a JSON array of trades (``gid``, ``id``,
  ``tradedAt``, ``isMaker``...; numbers as JSON numbers, kept at their written text).
- KuCoin's trade-history CSV (``tradeCreatedAt,symbol,side,price,size,funds,fee,...``):
  fills. It has no trade ids, so each fill gets ``<time in ms>-<n>``; its times state no
  zone and are read as UTC.
- Bittrex's order-history CSV (four preamble lines, then ``TXID,Time (UTC),...``): orders,
  one per executed order, with the executed quantity as ``filled``.
- Bitstamp's transaction CSV (``Type,Datetime,Account,Amount,Value,Rate,Fee,Sub Type``,
  currencies inside the cells, ``Jan. 28, 2022, 12:13 AM`` dates read as UTC): its
  ``Market`` rows are fills; deposits and withdrawals belong to no dataset and are left
  out (the importer logs how many).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from calendar import timegm
from pathlib import Path
from typing import Any

from ..datasets import FILLS, ORDERS
from . import Hints, Parsed
from .convert import source_error
from .records import (
    NS_PER_MS,
    NS_PER_S,
    ColumnRows,
    boolean,
    field,
    iso_to_ns,
    load_json,
    naming_file,
    ranks,
    strip_currency,
)
from .symbols import normalize_exchange, unify_symbol

logger = logging.getLogger(__name__)

KUCOIN_HEADER = "tradeCreatedAt,symbol,side,price,size,funds,fee,feeCurrency"
BITTREX_HEADER = "TXID,Time (UTC),Transaction,Order Type,Market,Base,Quote,Price"
BITSTAMP_HEADER = "Type,Datetime,Account,Amount,Value,Rate,Fee,Sub Type"
BITTREX_TIME_IN_FORCE = {
    "good til cancelled": "GTC",
    "immediate or cancel": "IOC",
    "fill or kill": "FOK",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_BITSTAMP_TIME = re.compile(
    r"^(?P<month>[A-Za-z]+)\.? (?P<day>\d{1,2}), (?P<year>\d{4}), "
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))? (?P<half>[AaPp])\.?[Mm]\.?$"
)


def synthetic_ids(symbols: list[str], times_ns: list[int]) -> list[str]:
    """``<time in ms>-<n>`` ids for fills without ids, n counting same-time fills."""
    counts = ranks(zip(symbols, times_ns, strict=True))
    return [f"{t // NS_PER_MS}-{n}" for t, n in zip(times_ns, counts, strict=True)]


def bitstamp_time_to_ns(text: str, path: Path, line: int) -> int:
    """Nanoseconds of a Bitstamp export date such as ``Jan. 28, 2022, 12:13 AM`` (UTC)."""
    match = _BITSTAMP_TIME.match(text.strip())
    month = match["month"][:3].lower() if match else ""
    if match is None or month not in MONTHS:
        raise source_error(path, f"date {text!r} is not like 'Jan. 28, 2022, 12:13 AM'", line)
    hour = int(match["hour"]) % 12 + (12 if match["half"].lower() == "p" else 0)
    stamp = (int(match["year"]), MONTHS.index(month) + 1, int(match["day"]), hour)
    return timegm((*stamp, int(match["minute"] or 0), 0, 0, 0, 0)) * NS_PER_S


def _csv_rows(path: Path, header: str) -> list[tuple[int, dict[str, str]]]:
    """Rows after the line starting with ``header``, each with its 1-based line number."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise source_error(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(header)), None)
    if start is None:
        raise source_error(path, f"header line {header!r}... not found")
    reader = csv.DictReader(io.StringIO("\n".join(lines[start:])))
    out = []
    for offset, row in enumerate(reader):
        if None in row or any(value is None for value in row.values()):
            raise source_error(path, "row has a different number of cells than the header")
        out.append((start + 2 + offset, row))
    return out


def read_bbgo(path: Path, hints: Hints) -> list[Parsed]:
    """bbgo's trade history JSON as fills."""
    trades = load_json(path)
    if not isinstance(trades, list) or not all(isinstance(t, dict) for t in trades):
        raise source_error(path, "expected a JSON array of bbgo trades")
    rows = ColumnRows(FILLS)
    for raw in trades:
        exchange, _ = normalize_exchange(str(raw.get("exchange") or hints.exchange or ""))
        market = "linear" if raw.get("isFutures") else "spot"
        is_maker = boolean(raw.get("isMaker"), "isMaker", path)
        order_id = raw.get("orderID", raw.get("orderId"))
        rows.add(
            exchange=exchange,
            account=hints.account,
            symbol=unify_symbol(str(field(raw, "symbol", path)), exchange, market),
            trade_id=str(field(raw, "id", path)),
            order_id=None if order_id is None else str(order_id),
            time=iso_to_ns(str(field(raw, "tradedAt", path)), path),
            side=str(field(raw, "side", path)).lower(),
            taker_or_maker=None if is_maker is None else ("maker" if is_maker else "taker"),
            price=field(raw, "price", path),
            amount=field(raw, "quantity", path),
            cost=raw.get("quoteQuantity"),
            fee=raw.get("fee"),
            fee_currency=raw.get("feeCurrency"),
        )
    return [Parsed(FILLS, rows.table(path))]


def read_kucoin(path: Path, hints: Hints) -> list[Parsed]:
    """KuCoin's trade-history CSV as fills (ids made from time and order in the file)."""
    rows = ColumnRows(FILLS)
    parsed = _csv_rows(path, KUCOIN_HEADER)
    symbols = [unify_symbol(row["symbol"], "kucoin", "spot") for _, row in parsed]
    times = [iso_to_ns(row["tradeCreatedAt"], path, line) for line, row in parsed]
    ids = synthetic_ids(symbols, times)
    for (line, row), symbol, time_ns, trade_id in zip(parsed, symbols, times, ids, strict=True):
        rows.add(
            line,
            exchange="kucoin",
            account=hints.account,
            symbol=symbol,
            trade_id=trade_id,
            time=time_ns,
            side=row["side"].lower(),
            price=row["price"],
            amount=row["size"],
            cost=row["funds"] or None,
            fee=row["fee"] or None,
            fee_currency=row["feeCurrency"] or None,
        )
    return [Parsed(FILLS, rows.table(path))]


def read_bittrex(path: Path, hints: Hints) -> list[Parsed]:
    """Bittrex's order-history CSV as orders."""
    rows = ColumnRows(ORDERS)
    for line, row in _csv_rows(path, BITTREX_HEADER):
        transaction = row["Transaction"].strip().lower()
        if transaction not in ("bought", "sold"):
            raise source_error(
                path, f"Transaction {row['Transaction']!r} is not Bought or Sold", line
            )
        tif = row.get("Time In Force", "").strip()
        rows.add(
            line,
            exchange="bittrex",
            account=hints.account,
            symbol=f"{row['Base'].strip().upper()}/{row['Quote'].strip().upper()}",
            order_id=row["TXID"],
            time=iso_to_ns(row["Time (UTC)"], path, line),
            side="buy" if transaction == "bought" else "sell",
            type=row["Order Type"].strip().lower() or None,
            time_in_force=BITTREX_TIME_IN_FORCE.get(tif.lower(), tif or None),
            price=row["Price"] or None,
            filled=row["Quantity (Base)"] or None,
            cost=row["Total (Quote)"] or None,
            fee=row["Fees (Quote)"] or None,
            fee_currency=row["Quote"].strip().upper() if row["Fees (Quote)"] else None,
        )
    return [Parsed(ORDERS, rows.table(path))]


def read_bitstamp(path: Path, hints: Hints) -> list[Parsed]:
    """Bitstamp's transaction CSV: Market rows as fills, other rows left out."""
    trades: list[tuple[int, dict[str, Any]]] = []
    left_out = 0
    for line, row in _csv_rows(path, BITSTAMP_HEADER):
        if row["Type"].strip() != "Market":
            left_out += 1
            continue
        amount, base = strip_currency(row["Amount"], path, line)
        price, quote = strip_currency(row["Rate"], path, line)
        cost, _ = strip_currency(row["Value"], path, line) if row["Value"] else (None, "")
        fee, fee_currency = strip_currency(row["Fee"], path, line) if row["Fee"] else (None, None)
        trades.append(
            (
                line,
                {
                    "symbol": f"{base}/{quote}",
                    "time": bitstamp_time_to_ns(row["Datetime"], path, line),
                    "side": row["Sub Type"].strip().lower() or None,
                    "price": price,
                    "amount": amount,
                    "cost": cost,
                    "fee": fee,
                    "fee_currency": fee_currency,
                },
            )
        )
    if left_out:
        logger.info("%s: %d non-trade rows (deposits, withdrawals...) left out", path, left_out)
    rows = ColumnRows(FILLS)
    ids = synthetic_ids([t["symbol"] for _, t in trades], [t["time"] for _, t in trades])
    for (line, trade), trade_id in zip(trades, ids, strict=True):
        rows.add(line, exchange="bitstamp", account=hints.account, trade_id=trade_id, **trade)
    return [Parsed(FILLS, rows.table(path))]


class AccountExportImporter:
    """bbgo trade JSON and KuCoin, Bittrex and Bitstamp account-history CSVs."""

    name = "account-history-export"

    def _kind(self, path: Path, head: bytes) -> str | None:
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        if path.suffix == ".json" and text.lstrip().startswith("["):
            markers = ('"gid"', '"tradedAt"', '"isMaker"', '"quoteQuantity"')
            return "bbgo" if all(marker in text for marker in markers) else None
        if text.startswith(KUCOIN_HEADER):
            return "kucoin"
        if text.startswith(BITSTAMP_HEADER):
            return "bitstamp"
        if any(line.startswith(BITTREX_HEADER) for line in text.splitlines()[:8]):
            return "bittrex"
        return None

    def sniff(self, path: Path, head: bytes) -> bool:
        return self._kind(path, head) is not None

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            return self._read(path, hints)

    def _read(self, path: Path, hints: Hints) -> list[Parsed]:
        with path.open("rb") as handle:
            kind = self._kind(path, handle.read(4096))
        readers = {
            "bbgo": read_bbgo,
            "kucoin": read_kucoin,
            "bittrex": read_bittrex,
            "bitstamp": read_bitstamp,
        }
        if kind is None:
            raise source_error(path, "not a bbgo, KuCoin, Bittrex or Bitstamp account export")
        return readers[kind](path, hints)


IMPORTERS = [AccountExportImporter()]
