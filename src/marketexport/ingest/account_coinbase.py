"""Coinbase Exchange REST responses saved as JSON: ``/fills`` and ``/orders`` pages.

Each file is one page (a JSON array, newest first). Pages of one export may overlap (the
closed-orders query windows of a paged download do), so rows are keyed by exchange,
account, symbol and id: a second page holding the same order adds nothing, and importing
a page again adds nothing. Numbers are decimal text, also in scientific notation
(``"6.081e-05"``); times are ISO 8601 with microseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets import FILLS, ORDERS
from . import Hints, Parsed
from .convert import source_error
from .records import ColumnRows, field, iso_to_ns, load_json, naming_file
from .symbols import unify_symbol

EXCHANGE = "coinbase"
LIQUIDITY = {"M": "maker", "T": "taker"}
FILL_FIELDS = (b'"trade_id"', b'"product_id"', b'"liquidity"')
ORDER_FIELDS = (b'"product_id"', b'"filled_size"', b'"executed_value"')


def _quote_currency(symbol: str) -> str:
    # Coinbase Exchange charges trading fees in the quote currency of the product.
    return symbol.split("/")[1].split(":")[0]


def _order_status(raw: dict[str, Any], path: Path) -> str:
    status = str(field(raw, "status", path))
    if status == "done":
        reason = raw.get("done_reason")
        if reason == "filled":
            return "closed"
        if reason in ("canceled", "cancelled"):
            return "canceled"
        raise source_error(
            path,
            f"order {raw.get('id')!r}: done_reason {reason!r} not understood (filled, canceled)",
        )
    if status in ("open", "pending", "active", "received"):
        return "open"
    if status == "rejected":
        return "rejected"
    raise source_error(
        path,
        f"order {raw.get('id')!r}: status {status!r} not understood "
        "(done, open, pending, active, received, rejected)",
    )


def add_fill(rows: ColumnRows, raw: dict[str, Any], hints: Hints, path: Path) -> None:
    """One fill of ``GET /fills`` as a fills row."""
    symbol = unify_symbol(str(field(raw, "product_id", path)), EXCHANGE, "spot")
    liquidity = raw.get("liquidity")
    rows.add(
        exchange=EXCHANGE,
        account=hints.account,
        symbol=symbol,
        trade_id=str(field(raw, "trade_id", path)),
        order_id=raw.get("order_id"),
        time=iso_to_ns(str(field(raw, "created_at", path)), path),
        side=raw.get("side"),
        taker_or_maker=LIQUIDITY.get(str(liquidity)) if liquidity is not None else None,
        price=field(raw, "price", path),
        amount=field(raw, "size", path),
        fee=raw.get("fee"),
        fee_currency=_quote_currency(symbol) if raw.get("fee") is not None else None,
    )


def add_order(rows: ColumnRows, raw: dict[str, Any], hints: Hints, path: Path) -> None:
    """One order of ``GET /orders`` as an orders row."""
    symbol = unify_symbol(str(field(raw, "product_id", path)), EXCHANGE, "spot")
    amount, filled = raw.get("size"), raw.get("filled_size")
    done_at = raw.get("done_at")
    rows.add(
        exchange=EXCHANGE,
        account=hints.account,
        symbol=symbol,
        order_id=str(field(raw, "id", path)),
        client_order_id=raw.get("client_oid") or None,
        time=iso_to_ns(str(field(raw, "created_at", path)), path),
        updated_time=iso_to_ns(str(done_at), path) if done_at else None,
        side=raw.get("side"),
        type=raw.get("type"),
        time_in_force=raw.get("time_in_force"),
        status=_order_status(raw, path),
        price=raw.get("price"),
        amount=amount,
        filled=filled,
        cost=raw.get("executed_value"),
        fee=raw.get("fill_fees"),
        fee_currency=_quote_currency(symbol) if raw.get("fill_fees") is not None else None,
        post_only=raw.get("post_only"),
    )


class CoinbaseAccountImporter:
    """Coinbase Exchange ``/fills`` and ``/orders`` response pages (JSON arrays)."""

    name = "coinbase-exchange-account"

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix != ".json" or not head.lstrip().startswith(b"["):
            return False
        return all(f in head for f in FILL_FIELDS) or all(f in head for f in ORDER_FIELDS)

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            return self._read(path, hints)

    def _read(self, path: Path, hints: Hints) -> list[Parsed]:
        page = load_json(path)
        if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
            raise source_error(path, "expected a JSON array of Coinbase fills or orders")
        fills, orders = ColumnRows(FILLS), ColumnRows(ORDERS)
        for index, raw in enumerate(page):
            if "trade_id" in raw and "liquidity" in raw:
                add_fill(fills, raw, hints, path)
            elif "id" in raw and "filled_size" in raw:
                add_order(orders, raw, hints, path)
            else:
                raise source_error(
                    path,
                    f"element {index} is neither a fill (trade_id, liquidity) nor an order "
                    "(id, filled_size)",
                )
        return [Parsed(rows.spec, rows.table(path)) for rows in (fills, orders) if len(rows)]


IMPORTERS = [CoinbaseAccountImporter()]
