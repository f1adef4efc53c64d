"""The datasets marketexport stores and exports: columns, types, units, keys.

Each dataset has a fixed column list. Column kinds map to one Arrow type each:

- ``text``: ``string``
- ``decimal``: ``decimal128(38, 22)``, so every exchange value arrives exactly: 16 integer
  digits and 22 decimal places hold every price and amount seen in exchange files, and the
  float noise of files written from binary floats (``5.2000000000000004e-05``)
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

DECIMAL_TYPE = pa.decimal128(38, 22)
DECIMAL_SQL = f"DECIMAL({DECIMAL_TYPE.precision}, {DECIMAL_TYPE.scale})"
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
    # A key column that holds a digest of each row's columns outside the key, computed on
    # import (ingest.convert.build_table): for snapshots, whose values can change while
    # every other key column stays the same.
    digest_column: str | None = None

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

_SEQ_DOC = (
    "rank of the {what} among the file's {what}s with the same exchange, symbol and time "
    "(0 = first); tells apart {what}s that share a timestamp"
)
_RECEIVE = _c(
    "receive_time",
    "time",
    "when the recorder received it (tardis local_timestamp, capture line time)",
    "UTC",
)

TICKER = Dataset(
    name="ticker",
    doc=(
        "top of book (best bid/ask quotes) and 24-hour ticker statistics; a quote stream "
        "such as Binance bookTicker lands here, the full book in orderbook"
    ),
    columns=(
        *_MARKET,
        _c(
            "time",
            "time",
            "exchange time of the quote (receive time when the source has none)",
            "UTC",
            nullable=False,
        ),
        _c("seq", "integer", _SEQ_DOC.format(what="quote"), "rank", nullable=False),
        _c("sequence", "integer", "the source's update id (Binance u, Coinbase sequence)"),
        _RECEIVE,
        _c("bid", "decimal", "best bid price", "quote currency"),
        _c("bid_size", "decimal", "amount at the best bid", "base currency (contracts)"),
        _c("ask", "decimal", "best ask price", "quote currency"),
        _c("ask_size", "decimal", "amount at the best ask", "base currency (contracts)"),
        _c("last", "decimal", "last trade price", "quote currency"),
        _c("last_size", "decimal", "last trade amount", "base currency"),
        _c("last_side", "text", "taker side of the last trade: buy or sell"),
        _c("last_trade_id", "id", "exchange id of the last trade"),
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
    doc=(
        "order-book snapshots and incremental updates in long form, one row per price level "
        "and event; replay in (time, seq) order"
    ),
    columns=(
        *_MARKET,
        _c(
            "time",
            "time",
            "exchange time of the snapshot or update (receive time when the source has none)",
            "UTC",
            nullable=False,
        ),
        _c("seq", "integer", _SEQ_DOC.format(what="event"), "rank", nullable=False),
        _c(
            "update_type",
            "text",
            "snapshot (a level of a full or top-N book), set (new absolute amount) "
            "or delete (level removed)",
            nullable=False,
        ),
        _c("side", "text", "bid or ask", nullable=False),
        _c("price", "decimal", "price level", "quote currency", nullable=False),
        _c(
            "amount",
            "decimal",
            "amount resting at the level (0 for delete)",
            "base currency (contracts where the exchange quotes contracts)",
            nullable=False,
        ),
        _c("level", "integer", "depth rank in a snapshot, 0 = best; empty for updates", "rank"),
        _c("sequence", "integer", "the source's update id (last id of the event)"),
        _c("first_sequence", "integer", "first update id of the event, when given"),
        _c("prev_sequence", "integer", "previous event's last update id, when given"),
        _RECEIVE,
    ),
    key=("exchange", "symbol", "time", "seq", "update_type", "side", "price"),
    time_column="time",
)

ORDERS = Dataset(
    name="orders",
    doc="the account's orders; pages of one export that overlap keep one row per order",
    columns=(
        *_ACCOUNT,
        _c("order_id", "id", "exchange order id, exactly as the exchange wrote it", nullable=False),
        _c("client_order_id", "id", "client order id"),
        _c("time", "time", "creation time", "UTC", nullable=False),
        _c("updated_time", "time", "last update (done time for closed orders)", "UTC"),
        _c("side", "text", "buy or sell"),
        _c("type", "text", "limit, market, stop...; lower case"),
        _c("time_in_force", "text", "GTC, IOC, FOK, PO..."),
        _c("status", "text", "open, closed, canceled, expired or rejected"),
        _c("price", "decimal", "limit price (empty for market orders)", "quote currency"),
        _c("amount", "decimal", "ordered amount", "base currency"),
        _c("filled", "decimal", "filled amount", "base currency"),
        _c("remaining", "decimal", "amount left, when the source gives it", "base currency"),
        _c("average", "decimal", "average fill price, when the source gives it", "quote currency"),
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
    doc="the account's own trades (fills of its orders); overlapping pages keep one row per fill",
    columns=(
        *_ACCOUNT,
        _c(
            "trade_id",
            "id",
            "exchange trade id; exports without ids get '<time in ms>-<n>' with n counting "
            "fills at the same time in the file",
            nullable=False,
        ),
        _c("order_id", "id", "order the fill belongs to"),
        _c("time", "time", "fill time", "UTC", nullable=False),
        _c("side", "text", "buy or sell"),
        _c("taker_or_maker", "text", "taker or maker"),
        _c("price", "decimal", "fill price", "quote currency", nullable=False),
        _c("amount", "decimal", "filled amount", "base currency", nullable=False),
        _c("cost", "decimal", "filled value as reported", "quote currency"),
        _c("fee", "decimal", "fee paid", "fee currency"),
        _c("fee_currency", "text", "currency of the fee"),
        _c("realized_pnl", "decimal", "realised profit and loss (derivatives)", "settle currency"),
    ),
    key=("exchange", "account", "symbol", "trade_id"),
    time_column="time",
)

POSITIONS = Dataset(
    name="positions",
    doc="snapshots of the account's derivative positions",
    columns=(
        *_ACCOUNT,
        _c(
            "time",
            "time",
            "time of the snapshot; the exchange's last update of the position when the "
            "source has no fetch time (Binance updateTime)",
            "UTC",
            nullable=False,
        ),
        _c("side", "text", "long, short or both (one-way mode)", nullable=False),
        _c(
            "snapshot",
            "id",
            "digest of the values in the columns after it, computed on import: two fetches "
            "with the same time and side but other values are both kept, the same values "
            "twice are one row",
            nullable=False,
        ),
        _c(
            "contracts", "decimal", "position size, negative for short in one-way mode", "contracts"
        ),
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
    key=("exchange", "account", "symbol", "time", "side", "snapshot"),
    time_column="time",
    digest_column="snapshot",
)

FUNDING = Dataset(
    name="funding",
    doc="funding rates of perpetual swaps, one row per funding event",
    columns=(
        *_MARKET,
        _c(
            "time",
            "time",
            "funding time as the source gives it (freqtrade keeps Binance's millisecond jitter)",
            "UTC",
            nullable=False,
        ),
        _c(
            "rate",
            "decimal",
            "funding rate for the interval; positive: longs pay shorts",
            "fraction (0.0001 = 0.01 %)",
            nullable=False,
        ),
        _c("interval_hours", "integer", "funding interval", "hours"),
        _c("mark_price", "decimal", "mark price at funding time", "quote currency"),
    ),
    key=("exchange", "symbol", "time"),
    time_column="time",
)

OPEN_INTEREST = Dataset(
    name="open_interest",
    doc=(
        "open interest and long/short ratios of derivatives (Binance USD-M 'metrics' files; "
        "the ratio columns keep Binance's names)"
    ),
    columns=(
        *_MARKET,
        _c("time", "time", "time of the statistic (Binance create_time)", "UTC", nullable=False),
        _c("open_interest", "decimal", "open interest (sum_open_interest)", "base currency"),
        _c(
            "open_interest_value",
            "decimal",
            "open interest value (sum_open_interest_value)",
            "quote currency",
        ),
        _c(
            "count_toptrader_long_short_ratio",
            "decimal",
            "top traders' long/short ratio by accounts",
            "ratio",
        ),
        _c(
            "sum_toptrader_long_short_ratio",
            "decimal",
            "top traders' long/short ratio by positions",
            "ratio",
        ),
        _c("count_long_short_ratio", "decimal", "all accounts' long/short ratio", "ratio"),
        _c(
            "sum_taker_long_short_vol_ratio",
            "decimal",
            "taker buy volume / taker sell volume",
            "ratio",
        ),
    ),
    key=("exchange", "symbol", "time"),
    time_column="time",
)

BOOK_DEPTH = Dataset(
    name="book_depth",
    doc=(
        "cumulative order-book depth within percentage bands around the mid price "
        "(Binance 'bookDepth' files, which have no price levels)"
    ),
    columns=(
        *_MARKET,
        _c("time", "time", "time of the measurement", "UTC", nullable=False),
        _c(
            "percentage",
            "decimal",
            "band edge from the mid price: negative = bids, positive = asks",
            "percent",
            nullable=False,
        ),
        _c("depth", "decimal", "amount resting within the band", "base currency"),
        _c("notional", "decimal", "value resting within the band", "quote currency"),
    ),
    key=("exchange", "symbol", "time", "percentage"),
    time_column="time",
)

DATASETS: dict[str, Dataset] = {
    ds.name: ds
    for ds in (
        OHLCV,
        TRADES,
        TICKER,
        ORDERBOOK,
        ORDERS,
        FILLS,
        POSITIONS,
        FUNDING,
        OPEN_INTEREST,
        BOOK_DEPTH,
    )
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
