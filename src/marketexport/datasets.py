"""The datasets marketexport stores and exports: columns, types, units, keys.

Each dataset has a fixed column list. Column kinds map to one Arrow type each:

- ``text``: ``string``
- ``decimal``: ``decimal128(38, 18)``, so every exchange value arrives exactly
- ``integer``: ``int64``
- ``boolean``: ``bool``
- ``time``: a UTC instant. The store keeps nanoseconds; an export uses the coarsest unit
  (ms, us or ns) that is exact for every row it selects, so a millisecond source comes out
  in milliseconds and a microsecond source in microseconds.
- ``id``: an identifier kept as text (exchanges use integers, UUIDs and mixed forms; as text
  no digit is ever lost).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .errors import RequestError

DECIMAL_TYPE = pa.decimal128(38, 18)
STORE_TIME_TYPE = pa.timestamp("ns")

KIND_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "id": pa.string(),
    "decimal": DECIMAL_TYPE,
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "time": STORE_TIME_TYPE,
}


@dataclass(frozen=True)
class Column:
    """One column of a dataset: its name, kind, unit and meaning."""

    name: str
    kind: str
    doc: str
    unit: str = ""
    nullable: bool = True

    @property
    def arrow_type(self) -> pa.DataType:
        return KIND_TYPES[self.kind]


@dataclass(frozen=True)
class Dataset:
    """A dataset: its columns, primary key and the time column ranges apply to."""

    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise RequestError(
            f"unknown column {name!r} for dataset {self.name!r} "
            f"(expected one of: {', '.join(self.column_names)})",
            column=name,
            dataset=self.name,
        )

    @property
    def store_schema(self) -> pa.Schema:
        """The Arrow schema of the rows as the store keeps them (times in ns)."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns]
        )

    @property
    def order_by(self) -> tuple[str, ...]:
        """The export order: time first, then the key, so that every store agrees."""
        rest = tuple(name for name in self.key if name != self.time_column)
        return (self.time_column, *rest)


def _c(name: str, kind: str, doc: str, unit: str = "", nullable: bool = True) -> Column:
    return Column(name, kind, doc, unit, nullable)


_MARKET = (
    _c("exchange", "text", "exchange id, lower case (binance, coinbase, bybit...)", nullable=False),
    _c(
        "symbol",
        "text",
        "unified market symbol BASE/QUOTE; derivatives add :SETTLE (BTC/USDT:USDT)",
        nullable=False,
    ),
)
_ACCOUNT = (
    _MARKET[0],
    _c("account", "text", "account label given on import (default 'default')", nullable=False),
    _MARKET[1],
)

OHLCV = Dataset(
    name="ohlcv",
    doc="OHLCV candles, labelled by their open time",
    columns=(
        *_MARKET,
        _c("timeframe", "text", "candle length: 1m, 5m, 1h, 1d, 1w, 1M...", nullable=False),
        _c(
            "price_type",
            "text",
            "what was sampled: trade (default), mark, index or premium_index prices",
            nullable=False,
        ),
        _c("time", "time", "open time of the candle", "UTC", nullable=False),
        _c("open", "decimal", "first price in the candle", "quote currency", nullable=False),
        _c("high", "decimal", "highest price", "quote currency", nullable=False),
        _c("low", "decimal", "lowest price", "quote currency", nullable=False),
        _c("close", "decimal", "last price", "quote currency", nullable=False),
        _c("volume", "decimal", "traded amount", "base currency (contracts for inverse)"),
        _c("quote_volume", "decimal", "traded value", "quote currency"),
        _c("trades", "integer", "number of trades in the candle", "count"),
        _c("taker_buy_volume", "decimal", "amount bought by takers", "base currency"),
        _c("taker_buy_quote_volume", "decimal", "value bought by takers", "quote currency"),
    ),
    key=("exchange", "symbol", "timeframe", "price_type", "time"),
    time_column="time",
)

TRADES = Dataset(
    name="trades",
    doc=(
        "public trades; aggregated trades (Binance aggTrades) are rows with "
        "aggregated=true and their first/last trade ids"
    ),
    columns=(
        *_MARKET,
        _c("time", "time", "exchange time of the trade", "UTC", nullable=False),
        _c(
            "trade_id",
            "id",
            "exchange trade id (aggregate id when aggregated); sources without ids get "
            "'<time in ms>-<n>' with n counting trades in the same millisecond",
            nullable=False,
        ),
        _c("side", "text", "taker side: buy or sell"),
        _c("price", "decimal", "trade price", "quote currency", nullable=False),
        _c(
            "amount",
            "decimal",
            "traded amount",
            "base currency (contracts where the source says so)",
            nullable=False,
        ),
        _c("cost", "decimal", "traded value, price x amount as reported", "quote currency"),
        _c("is_buyer_maker", "boolean", "true when the buyer was the maker"),
        _c("aggregated", "boolean", "true for an aggregate of trades", nullable=False),
        _c("first_trade_id", "integer", "first trade id in the aggregate"),
        _c("last_trade_id", "integer", "last trade id in the aggregate"),
        _c("is_best_match", "boolean", "Binance spot best-price-match flag"),
    ),
    key=("exchange", "symbol", "aggregated", "trade_id"),
    time_column="time",
)

TICKER = Dataset(
    name="ticker",
    doc="best bid/ask quotes and 24-hour ticker statistics",
    columns=(
        *_MARKET,
        _c(
            "time",
            "time",
            "exchange time of the quote (receive time when the source has none)",
            "UTC",
            nullable=False,
        ),
        _c(
            "seq",
            "integer",
            "update id from the source, or the row's rank among rows with "
            "the same time in its file",
            nullable=False,
        ),
        _c("bid", "decimal", "best bid price", "quote currency"),
        _c("bid_size", "decimal", "amount at the best bid", "base currency"),
        _c("ask", "decimal", "best ask price", "quote currency"),
        _c("ask_size", "decimal", "amount at the best ask", "base currency"),
        _c("last", "decimal", "last trade price", "quote currency"),
        _c("last_size", "decimal", "last trade amount", "base currency"),
        _c("open_24h", "decimal", "price 24 hours ago", "quote currency"),
        _c("high_24h", "decimal", "24-hour high", "quote currency"),
        _c("low_24h", "decimal", "24-hour low", "quote currency"),
        _c("base_volume_24h", "decimal", "24-hour traded amount", "base currency"),
        _c("quote_volume_24h", "decimal", "24-hour traded value", "quote currency"),
    ),
    key=("exchange", "symbol", "time", "seq"),
    time_column="time",
)

ORDERBOOK = Dataset(
    name="orderbook",
    doc="order-book snapshots and incremental updates, one row per price level",
    columns=(
        *_MARKET,
        _c("time", "time", "exchange time of the snapshot or update", "UTC", nullable=False),
        _c("update_type", "text", "snapshot, set (absolute amount) or delete", nullable=False),
        _c("side", "text", "bid or ask", nullable=False),
        _c("price", "decimal", "price level", "quote currency", nullable=False),
        _c(
            "amount",
            "decimal",
            "amount resting at the level (0 for delete)",
            "base currency",
            nullable=False,
        ),
        _c("level", "integer", "depth rank in a snapshot, 0 = best; empty for updates"),
        _c("sequence", "integer", "the source's update id (last id of the event)"),
        _c("first_sequence", "integer", "first update id of the event, when given"),
        _c("prev_sequence", "integer", "previous event's last update id, when given"),
    ),
    key=("exchange", "symbol", "time", "update_type", "side", "price"),
    time_column="time",
)

ORDERS = Dataset(
    name="orders",
    doc="the account's orders",
    columns=(
        *_ACCOUNT,
        _c("order_id", "id", "exchange order id", nullable=False),
        _c("client_order_id", "id", "client order id"),
        _c("time", "time", "creation time", "UTC", nullable=False),
        _c("updated_time", "time", "last update (done time for closed orders)", "UTC"),
        _c("side", "text", "buy or sell"),
        _c("type", "text", "limit, market, stop...; lower case"),
        _c("time_in_force", "text", "GTC, IOC, FOK, PO..."),
        _c("status", "text", "open, closed, canceled, expired, rejected"),
        _c("price", "decimal", "limit price", "quote currency"),
        _c("amount", "decimal", "ordered amount", "base currency"),
        _c("filled", "decimal", "filled amount", "base currency"),
        _c("remaining", "decimal", "amount left", "base currency"),
        _c("average", "decimal", "average fill price", "quote currency"),
        _c("cost", "decimal", "filled value", "quote currency"),
        _c("fee", "decimal", "fee paid", "fee currency"),
        _c("fee_currency", "text", "currency of the fee"),
        _c("reduce_only", "boolean", "reduce-only flag (derivatives)"),
        _c("post_only", "boolean", "post-only flag"),
    ),
    key=("exchange", "account", "symbol", "order_id"),
    time_column="time",
)

FILLS = Dataset(
    name="fills",
    doc="the account's own trades (fills of its orders)",
    columns=(
        *_ACCOUNT,
        _c("trade_id", "id", "exchange trade id", nullable=False),
        _c("order_id", "id", "order the fill belongs to"),
        _c("time", "time", "fill time", "UTC", nullable=False),
        _c("side", "text", "buy or sell"),
        _c("taker_or_maker", "text", "taker or maker"),
        _c("price", "decimal", "fill price", "quote currency", nullable=False),
        _c("amount", "decimal", "filled amount", "base currency", nullable=False),
        _c("cost", "decimal", "filled value", "quote currency"),
        _c("fee", "decimal", "fee paid", "fee currency"),
        _c("fee_currency", "text", "currency of the fee"),
    ),
    key=("exchange", "account", "symbol", "trade_id"),
    time_column="time",
)

POSITIONS = Dataset(
    name="positions",
    doc="snapshots of the account's derivative positions",
    columns=(
        *_ACCOUNT,
        _c("time", "time", "time of the snapshot", "UTC", nullable=False),
        _c("side", "text", "long, short or both", nullable=False),
        _c("contracts", "decimal", "position size", "contracts"),
        _c("contract_size", "decimal", "base amount per contract", "base currency"),
        _c("entry_price", "decimal", "average entry price", "quote currency"),
        _c("mark_price", "decimal", "mark price", "quote currency"),
        _c("liquidation_price", "decimal", "liquidation price", "quote currency"),
        _c("notional", "decimal", "position value at mark", "quote currency"),
        _c("leverage", "decimal", "leverage", "ratio"),
        _c("margin_mode", "text", "cross or isolated"),
        _c("initial_margin", "decimal", "initial margin", "settle currency"),
        _c("maintenance_margin", "decimal", "maintenance margin", "settle currency"),
        _c("unrealized_pnl", "decimal", "unrealised profit and loss", "settle currency"),
        _c("realized_pnl", "decimal", "realised profit and loss", "settle currency"),
    ),
    key=("exchange", "account", "symbol", "time", "side"),
    time_column="time",
)

DATASETS: dict[str, Dataset] = {
    ds.name: ds for ds in (OHLCV, TRADES, TICKER, ORDERBOOK, ORDERS, FILLS, POSITIONS)
}


def get_dataset(name: str) -> Dataset:
    """Return the dataset called ``name``, or raise naming the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise RequestError(
            f"unknown dataset {name!r} (expected one of: {', '.join(DATASETS)})",
            dataset=name,
        ) from None
