"""Binance websocket messages of a capture, as orderbook, ticker, trades and ohlcv rows.

Combined-stream messages ``{"stream": "<symbol>@<kind>", "data": {...}}``:

- ``@depth``/``@depth@100ms`` (depthUpdate): set/delete rows (amount 0 deletes), time =
  ``T`` (futures) or ``E``, sequence ``u``, first ``U``, previous ``pu`` (futures);
- ``@bookTicker``: ticker rows with update id ``u``; spot bookTicker messages carry no
  time at all, so they take the receive time;
- ``@trade`` and ``@aggTrade``: trades rows (taker side = sell when the buyer was maker);
- ``@kline_<interval>``: ohlcv rows, closed candles only (``x: true``), since an open
  candle is not final;
- a REST depth snapshot ``{"lastUpdateId", "bids", "asks"}`` (it names no symbol: the
  capture's one symbol, else --symbol) -> snapshot rows at the receive time.

Spot or futures: from the capture's URL, else from the messages (only futures depth
updates carry ``pu``), else spot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Hints
from .capture_base import CaptureRows, Message, decimal_text
from .convert import source_error
from .records import NS_PER_MS, boolean, field, integer
from .symbols import unify_symbol

STREAM_KINDS = ("depth", "bookTicker", "trade", "aggTrade", "kline")


class BinanceMessages:
    """Maps one capture's Binance messages; ``market`` None means decide from messages."""

    def __init__(self, rows: CaptureRows, path: Path, hints: Hints, market: str | None) -> None:
        self.rows = rows
        self.path = path
        self.hints = hints
        self.market = market
        self.symbols: dict[str, str] = {}
        self.snapshots: list[Message] = []
        self.pending: list[Message] = []

    def _symbol(self, native: str) -> str:
        if native not in self.symbols:
            market = self.market or "spot"
            if market != "spot" and "_" in native:
                market = "inverse"
            self.symbols[native] = unify_symbol(native, "binance", market)
        return self.symbols[native]

    def add(self, message: Message) -> None:
        body = message.data
        if isinstance(body, dict) and "lastUpdateId" in body:
            self.snapshots.append(message)
            return
        if self.market is None:
            # Hold messages until a depth update says spot or futures.
            self.pending.append(message)
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, dict) and data.get("e") == "depthUpdate":
                self.market = "linear" if "pu" in data else "spot"
                self._flush_pending()
            return
        self._map(message)

    def _flush_pending(self) -> None:
        pending, self.pending = self.pending, []
        for message in pending:
            self._map(message)

    def finish(self) -> None:
        if self.market is None:
            self.market = "spot"
        self._flush_pending()
        for message in self.snapshots:
            self._snapshot(message)

    def _map(self, message: Message) -> None:
        stream = str(field(message.data, "stream", self.path, message.line))
        data = field(message.data, "data", self.path, message.line)
        kind = stream.split("@")[1] if "@" in stream else ""
        kind = "kline" if kind.startswith("kline_") else kind
        handlers = {
            "depth": self._depth,
            "bookTicker": self._book_ticker,
            "trade": self._trade,
            "aggTrade": self._trade,
            "kline": self._kline,
        }
        if kind not in handlers:
            raise source_error(
                self.path,
                f"stream {stream!r} not understood (known: {', '.join(STREAM_KINDS)})",
                message.line,
            )
        handlers[kind](data, message)

    def _ms(self, data: dict[str, Any], name: str, message: Message) -> int:
        value = field(data, name, self.path, message.line)
        return integer(value, name, self.path, message.line) * NS_PER_MS

    def _depth(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        self.rows.book.add(
            exchange="binance",
            symbol=self._symbol(str(field(data, "s", self.path, line))),
            time_ns=self._ms(data, "T" if "T" in data else "E", message),
            bids=field(data, "b", self.path, line),
            asks=field(data, "a", self.path, line),
            snapshot=False,
            line=line,
            sequence=integer(field(data, "u", self.path, line), "u", self.path, line),
            first_sequence=integer(data["U"], "U", self.path, line) if "U" in data else None,
            prev_sequence=integer(data["pu"], "pu", self.path, line) if "pu" in data else None,
            receive_time=message.receive_ns,
        )

    def _book_ticker(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        time_ns = self._ms(data, "T", message) if "T" in data else message.receive_ns
        self.rows.quotes.add(
            exchange="binance",
            symbol=self._symbol(str(field(data, "s", self.path, line))),
            time_ns=time_ns,
            line=line,
            sequence=integer(field(data, "u", self.path, line), "u", self.path, line),
            receive_time=message.receive_ns,
            bid=field(data, "b", self.path, line),
            bid_size=field(data, "B", self.path, line),
            ask=field(data, "a", self.path, line),
            ask_size=field(data, "A", self.path, line),
        )

    def _trade(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        aggregated = data.get("e") == "aggTrade"
        buyer_maker = boolean(field(data, "m", self.path, line), "m", self.path, line)
        ids = (
            {
                "trade_id": str(field(data, "a", self.path, line)),
                "first_trade_id": integer(data.get("f"), "f", self.path, line),
                "last_trade_id": integer(data.get("l"), "l", self.path, line),
            }
            if aggregated
            else {"trade_id": str(field(data, "t", self.path, line))}
        )
        self.rows.trades.add(
            line,
            exchange="binance",
            symbol=self._symbol(str(field(data, "s", self.path, line))),
            time=self._ms(data, "T", message),
            side="sell" if buyer_maker else "buy",
            price=decimal_text(field(data, "p", self.path, line)),
            amount=decimal_text(field(data, "q", self.path, line)),
            is_buyer_maker=buyer_maker,
            aggregated=aggregated,
            is_best_match=boolean(data.get("M"), "M", self.path, line),
            **ids,
        )

    def _kline(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        candle = field(data, "k", self.path, line)
        if not boolean(field(candle, "x", self.path, line), "x", self.path, line):
            return
        self.rows.candles.add(
            line,
            exchange="binance",
            symbol=self._symbol(str(field(candle, "s", self.path, line))),
            timeframe=str(field(candle, "i", self.path, line)),
            price_type="trade",
            time=self._ms(candle, "t", message),
            open=field(candle, "o", self.path, line),
            high=field(candle, "h", self.path, line),
            low=field(candle, "l", self.path, line),
            close=field(candle, "c", self.path, line),
            volume=candle.get("v"),
            quote_volume=candle.get("q"),
            trades=integer(candle["n"], "n", self.path, line) if "n" in candle else None,
            taker_buy_volume=candle.get("V"),
            taker_buy_quote_volume=candle.get("Q"),
        )

    def _snapshot(self, message: Message) -> None:
        line = message.line
        if len(self.symbols) == 1:
            symbol = next(iter(self.symbols.values()))
        elif self.hints.symbol:
            symbol = unify_symbol(self.hints.symbol, "binance", self.market)
        else:
            raise source_error(
                self.path,
                "a REST depth snapshot names no symbol and the capture holds "
                f"{len(self.symbols)} symbols; give it with --symbol",
                line,
            )
        self.rows.book.add(
            exchange="binance",
            symbol=symbol,
            time_ns=message.receive_ns,
            bids=field(message.data, "bids", self.path, line),
            asks=field(message.data, "asks", self.path, line),
            snapshot=True,
            line=line,
            sequence=integer(message.data["lastUpdateId"], "lastUpdateId", self.path, line),
            receive_time=message.receive_ns,
        )
