"""What the capture importers share: the row collectors and one received message."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from ..datasets import OHLCV, TRADES
from . import Parsed
from .book_levels import BookEvents, QuoteRows
from .records import ColumnRows


@dataclass
class CaptureRows:
    """The rows a capture yields, one collector per dataset."""

    path: Path
    book: BookEvents = field(init=False)
    quotes: QuoteRows = field(init=False)
    trades: ColumnRows = field(init=False)
    candles: ColumnRows = field(init=False)

    def __post_init__(self) -> None:
        self.book = BookEvents(self.path)
        self.quotes = QuoteRows(self.path)
        self.trades = ColumnRows(TRADES)
        self.candles = ColumnRows(OHLCV)

    def parsed(self) -> list[Parsed]:
        parts = [
            Parsed(self.book.rows.spec, self.book.table()) if len(self.book) else None,
            Parsed(self.quotes.rows.spec, self.quotes.table()) if len(self.quotes) else None,
            Parsed(TRADES, self.trades.table(self.path)) if len(self.trades) else None,
            Parsed(OHLCV, self.candles.table(self.path)) if len(self.candles) else None,
        ]
        return [part for part in parts if part is not None]


@dataclass(frozen=True)
class Message:
    """One received message: its JSON, receive time and line number."""

    data: Any
    receive_ns: int
    line: int


class MessageMapper(Protocol):
    """Turns the messages of one exchange's capture into rows."""

    def add(self, message: Message) -> None: ...
    def finish(self) -> None: ...


def decimal_text(value: Any) -> str | None:
    """A JSON number or string as decimal text (numbers were parsed as Decimal)."""
    if value is None:
        return None
    return str(value) if isinstance(value, (str, Decimal, int)) else repr(value)
