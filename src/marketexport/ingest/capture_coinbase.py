"""Coinbase Exchange websocket messages of a capture, as orderbook, ticker and trades rows.

- ``snapshot`` (level2; no time) -> snapshot rows at the receive time, best level first;
- ``l2update`` -> set/delete rows (size "0" deletes); ``buy`` changes are bids. Several
  updates of one product can share a microsecond, and seq keeps them apart in order;
- ``ticker`` -> ticker rows (best bid/ask, last trade, 24-hour statistics; the 30-day
  volume is not kept). A ticker without ``time`` takes the receive time;
- ``match``/``last_match`` -> trades rows. Coinbase's ``side`` is the maker's side, so the
  taker side is its opposite;
- ``subscriptions`` and ``heartbeat`` are control messages and add nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .capture_base import CaptureRows, Message
from .convert import source_error
from .records import field, integer, iso_to_ns
from .symbols import unify_symbol

CONTROL_TYPES = ("subscriptions", "heartbeat")
DATA_TYPES = ("snapshot", "l2update", "ticker", "match", "last_match")
BOOK_SIDES = {"buy": "bids", "sell": "asks"}


class CoinbaseMessages:
    """Maps one capture's Coinbase Exchange feed messages."""

    def __init__(self, rows: CaptureRows, path: Path) -> None:
        self.rows = rows
        self.path = path
        self.symbols: dict[str, str] = {}

    def _symbol(self, data: dict[str, Any], line: int) -> str:
        product = str(field(data, "product_id", self.path, line))
        if product not in self.symbols:
            self.symbols[product] = unify_symbol(product, "coinbase", "spot")
        return self.symbols[product]

    def _time(self, data: dict[str, Any], message: Message) -> int:
        text = data.get("time")
        return message.receive_ns if not text else iso_to_ns(str(text), self.path, message.line)

    def add(self, message: Message) -> None:
        data = message.data
        kind = field(data, "type", self.path, message.line)
        if kind in CONTROL_TYPES:
            return
        handlers = {
            "snapshot": self._snapshot,
            "l2update": self._update,
            "ticker": self._ticker,
            "match": self._match,
            "last_match": self._match,
        }
        if kind not in handlers:
            raise source_error(
                self.path,
                f"message type {kind!r} not understood (known: "
                f"{', '.join((*DATA_TYPES, *CONTROL_TYPES))})",
                message.line,
            )
        handlers[kind](data, message)

    def finish(self) -> None:
        return None

    def _snapshot(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        self.rows.book.add(
            exchange="coinbase",
            symbol=self._symbol(data, line),
            time_ns=self._time(data, message),
            bids=field(data, "bids", self.path, line),
            asks=field(data, "asks", self.path, line),
            snapshot=True,
            line=line,
            receive_time=message.receive_ns,
        )

    def _update(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        levels: dict[str, list[list[Any]]] = {"bids": [], "asks": []}
        for change in field(data, "changes", self.path, line):
            if len(change) != 3 or change[0] not in BOOK_SIDES:
                raise source_error(self.path, f"change {change!r} is not [side, price, size]", line)
            levels[BOOK_SIDES[change[0]]].append(change[1:])
        self.rows.book.add(
            exchange="coinbase",
            symbol=self._symbol(data, line),
            time_ns=self._time(data, message),
            bids=levels["bids"],
            asks=levels["asks"],
            snapshot=False,
            line=line,
            receive_time=message.receive_ns,
        )

    def _ticker(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        trade_id = data.get("trade_id")
        sequence = data.get("sequence")
        self.rows.quotes.add(
            exchange="coinbase",
            symbol=self._symbol(data, line),
            time_ns=self._time(data, message),
            line=line,
            sequence=None if sequence is None else integer(sequence, "sequence", self.path, line),
            receive_time=message.receive_ns,
            bid=data.get("best_bid"),
            bid_size=data.get("best_bid_size"),
            ask=data.get("best_ask"),
            ask_size=data.get("best_ask_size"),
            last=data.get("price"),
            last_size=data.get("last_size"),
            last_side=data.get("side"),
            last_trade_id=None if trade_id is None else str(trade_id),
            open_24h=data.get("open_24h"),
            high_24h=data.get("high_24h"),
            low_24h=data.get("low_24h"),
            base_volume_24h=data.get("volume_24h"),
        )

    def _match(self, data: dict[str, Any], message: Message) -> None:
        line = message.line
        maker_side = field(data, "side", self.path, line)
        if maker_side not in BOOK_SIDES:
            raise source_error(self.path, f"side {maker_side!r} is not buy or sell", line)
        self.rows.trades.add(
            line,
            exchange="coinbase",
            symbol=self._symbol(data, line),
            time=self._time(data, message),
            trade_id=str(field(data, "trade_id", self.path, line)),
            side="sell" if maker_side == "buy" else "buy",
            price=field(data, "price", self.path, line),
            amount=field(data, "size", self.path, line),
            is_buyer_maker=maker_side == "buy",
            aggregated=False,
        )
