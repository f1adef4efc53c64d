"""ccxt static-response files: Binance orders, own trades and positions.

ccxt keeps real exchange responses as test cases: a JSON array of objects with
``description``, ``method`` (fetchOrders, fetchMyTrades, fetchPositions...), ``input`` and
``httpResponse`` (the exchange's raw body). marketexport maps the raw Binance fields itself
(spot, USD-M and portfolio-margin shapes), not ccxt's parsed form; ccxt stores Binance's
integers as text (``"updateTime": "1722161166529"``), so both forms are accepted.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from ..datasets import FILLS, ORDERS, POSITIONS
from ..errors import SourceError
from . import Hints, Parsed
from .convert import source_error
from .records import NS_PER_MS, ColumnRows, boolean, field, integer, load_json, naming_file
from .symbols import EXCHANGE_ALIASES, normalize_exchange, unify_symbol

ORDER_METHODS = ("fetchOrders", "fetchOrder", "fetchOpenOrders", "fetchClosedOrders")
TRADE_METHODS = ("fetchMyTrades", "fetchOrderTrades")
POSITION_METHODS = ("fetchPositions", "fetchPosition", "fetchPositionsRisk")

# Binance order status -> the unified status of the orders dataset.
BINANCE_STATUS = {
    "NEW": "open",
    "PARTIALLY_FILLED": "open",
    "PENDING_NEW": "open",
    "FILLED": "closed",
    "CANCELED": "canceled",
    "PENDING_CANCEL": "canceled",
    "EXPIRED": "expired",
    "EXPIRED_IN_MATCH": "expired",
    "REJECTED": "rejected",
}


def _is_derivative(raw: dict[str, Any]) -> bool:
    # Futures and portfolio-margin bodies carry positionSide; spot bodies never do.
    return "positionSide" in raw or "marginAsset" in raw


def _symbol(raw: dict[str, Any], exchange: str, path: Path, line: int | None) -> str:
    native = str(field(raw, "symbol", path, line))
    return unify_symbol(native, exchange, "linear" if _is_derivative(raw) else "spot")


def _ms(value: Any, what: str, path: Path) -> int:
    return integer(value, what, path) * NS_PER_MS


def _zero_is_none(value: Any) -> Any:
    return None if value is None or Decimal(str(value)) == 0 else value


def add_order(
    rows: ColumnRows, raw: dict[str, Any], exchange: str, hints: Hints, path: Path
) -> None:
    """One Binance order body (spot, USD-M or portfolio margin) as an orders row."""
    order_type = str(field(raw, "type", path)).lower()
    status = str(field(raw, "status", path))
    if status not in BINANCE_STATUS:
        raise source_error(
            path, f"order status {status!r} not understood (known: {', '.join(BINANCE_STATUS)})"
        )
    amount, filled = raw.get("origQty"), raw.get("executedQty")
    price = raw.get("price")
    time_in_force = raw.get("timeInForce")
    rows.add(
        exchange=exchange,
        account=hints.account,
        symbol=_symbol(raw, exchange, path, None),
        order_id=str(field(raw, "orderId", path)),
        client_order_id=raw.get("clientOrderId"),
        time=_ms(field(raw, "time", path), "time", path),
        updated_time=_ms(raw["updateTime"], "updateTime", path) if "updateTime" in raw else None,
        side=str(field(raw, "side", path)).lower(),
        type=order_type,
        time_in_force=time_in_force,
        status=BINANCE_STATUS[status],
        # Binance writes price 0 for market orders, which have no limit price.
        price=_zero_is_none(price) if order_type == "market" else price,
        amount=amount,
        filled=filled,
        average=_zero_is_none(raw.get("avgPrice")),
        cost=raw.get("cummulativeQuoteQty", raw.get("cumQuote")),
        reduce_only=boolean(raw.get("reduceOnly"), "reduceOnly", path),
        post_only=order_type == "limit_maker" or time_in_force == "GTX",
    )


def add_fill(
    rows: ColumnRows, raw: dict[str, Any], exchange: str, hints: Hints, path: Path
) -> None:
    """One Binance account-trade body (spot myTrades or USD-M userTrades) as a fills row."""
    is_buyer = raw.get("isBuyer", raw.get("buyer"))
    is_maker = raw.get("isMaker", raw.get("maker"))
    if "side" in raw:
        side = str(raw["side"]).lower()
    elif is_buyer is not None:
        side = "buy" if boolean(is_buyer, "isBuyer", path) else "sell"
    else:
        raise source_error(path, f"trade {raw.get('id')!r} has neither side nor isBuyer")
    maker = boolean(is_maker, "isMaker", path)
    rows.add(
        exchange=exchange,
        account=hints.account,
        symbol=_symbol(raw, exchange, path, None),
        trade_id=str(field(raw, "id", path)),
        order_id=str(raw["orderId"]) if raw.get("orderId") is not None else None,
        time=_ms(field(raw, "time", path), "time", path),
        side=side,
        taker_or_maker=None if maker is None else ("maker" if maker else "taker"),
        price=field(raw, "price", path),
        amount=field(raw, "qty", path),
        cost=raw.get("quoteQty"),
        fee=raw.get("commission"),
        fee_currency=raw.get("commissionAsset"),
        realized_pnl=raw.get("realizedPnl"),
    )


def add_position(
    rows: ColumnRows, raw: dict[str, Any], exchange: str, hints: Hints, path: Path
) -> None:
    """One Binance positionRisk body as a positions row (time = the position's updateTime)."""
    margin_type = raw.get("marginType")
    rows.add(
        exchange=exchange,
        account=hints.account,
        symbol=unify_symbol(str(field(raw, "symbol", path)), exchange, "linear"),
        time=_ms(field(raw, "updateTime", path), "updateTime", path),
        side=str(field(raw, "positionSide", path)).lower(),
        contracts=field(raw, "positionAmt", path),
        entry_price=raw.get("entryPrice"),
        mark_price=raw.get("markPrice"),
        liquidation_price=raw.get("liquidationPrice"),
        notional=raw.get("notional"),
        leverage=raw.get("leverage"),
        margin_mode=str(margin_type).lower() if margin_type else None,
        initial_margin=raw.get("initialMargin"),
        maintenance_margin=raw.get("maintMargin"),
        unrealized_pnl=raw.get("unRealizedProfit"),
    )


def _exchange(path: Path, hints: Hints) -> str:
    # ccxt names its static files by exchange (binance.json); excerpts keep that prefix.
    prefix = path.name.split("_")[0].split(".")[0].lower()
    name = prefix if prefix in EXCHANGE_ALIASES else hints.exchange
    if not name:
        raise SourceError(
            f"{path}: the file name does not start with an exchange id; give it with "
            "--exchange binance",
            path=str(path),
        )
    exchange, _market = normalize_exchange(name)
    if exchange != "binance":
        raise SourceError(
            f"{path}: ccxt responses are mapped for Binance only (exchange {name!r}; "
            "give --exchange binance if the file holds Binance responses)",
            path=str(path),
        )
    return exchange


class CcxtStaticImporter:
    """Binance orders, own trades and positions from ccxt static-response test cases."""

    name = "ccxt-static-binance"

    def sniff(self, path: Path, head: bytes) -> bool:
        text = head.lstrip()
        return (
            path.suffix == ".json"
            and text.startswith(b"[")
            and b'"httpResponse"' in head
            and b'"method"' in head
        )

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            return self._read(path, hints)

    def _read(self, path: Path, hints: Hints) -> list[Parsed]:
        cases = load_json(path)
        if not isinstance(cases, list):
            raise source_error(path, "expected a JSON array of ccxt test cases")
        exchange = _exchange(path, hints)
        targets = {"orders": ColumnRows(ORDERS), "fills": ColumnRows(FILLS)}
        targets["positions"] = ColumnRows(POSITIONS)
        for index, case in enumerate(cases):
            method = field(case, "method", path)
            body = field(case, "httpResponse", path)
            bodies = body if isinstance(body, list) else [body]
            if method in ORDER_METHODS:
                target, add = targets["orders"], add_order
            elif method in TRADE_METHODS:
                target, add = targets["fills"], add_fill
            elif method in POSITION_METHODS:
                target, add = targets["positions"], add_position
            else:
                known = ", ".join((*ORDER_METHODS, *TRADE_METHODS, *POSITION_METHODS))
                raise source_error(
                    path, f"test case {index} has method {method!r} (understood: {known})"
                )
            for raw in bodies:
                if not isinstance(raw, dict):
                    raise source_error(path, f"test case {index}: response is not an object")
                add(target, raw, exchange, hints, path)
        return [Parsed(rows.spec, rows.table(path)) for rows in targets.values() if len(rows)]


IMPORTERS = [CcxtStaticImporter()]
