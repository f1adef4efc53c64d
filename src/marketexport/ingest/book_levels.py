"""Building orderbook and ticker rows: events, levels and same-time ranks (``seq``).

An order-book source delivers events (a snapshot, or a message of level changes); each
becomes one row per price level. Two events of one symbol may share an exchange time
(Coinbase sends several ``l2update`` messages in the same microsecond), so every row
carries ``seq``, the rank of its event among the file's events with the same exchange,
symbol and time. Replaying rows in (time, seq) order replays the source's order; quotes
get the same treatment in the ticker dataset.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..datasets import ORDERBOOK, TICKER
from .convert import source_error
from .records import ColumnRows, ranks

Levels = Sequence[Sequence[Any]]


def event_ids(keys: Iterable[Hashable]) -> list[int]:
    """Per row: an event number that grows whenever the key differs from the row above."""
    out: list[int] = []
    previous: object = object()
    event = -1
    for key in keys:
        if key != previous:
            event += 1
            previous = key
        out.append(event)
    return out


def levels_by_price(
    events: Sequence[int], sides: Sequence[str], prices: pa.Array, is_snapshot: Sequence[bool]
) -> list[int | None]:
    """Depth rank of snapshot rows within their event and side (best = 0); None otherwise.

    Bids rank from the highest price down, asks from the lowest up.
    """
    values = prices.to_pylist()
    groups: dict[tuple[int, str], list[int]] = {}
    for row, flag in enumerate(is_snapshot):
        if flag:
            groups.setdefault((events[row], sides[row]), []).append(row)
    levels: list[int | None] = [None] * len(values)
    for (_event, side), rows in groups.items():
        ordered = sorted(rows, key=lambda row: values[row], reverse=side == "bid")
        for rank, row in enumerate(ordered):
            levels[row] = rank
    return levels


def ranks_of_events(events: list[int], symbols: list[str], times: list[int]) -> list[int]:
    """Per row: the rank of its event among events with the same symbol and time."""
    first_rows: dict[int, int] = {}
    for row, event in enumerate(events):
        first_rows.setdefault(event, row)
    event_rank = dict(
        zip(
            first_rows,
            ranks((symbols[row], times[row]) for row in first_rows.values()),
            strict=True,
        )
    )
    return [event_rank[event] for event in events]


def _is_zero(amount: Any, path: Path, line: int | None) -> bool:
    try:
        return Decimal(str(amount)) == 0
    except InvalidOperation:
        raise source_error(path, f"amount {amount!r} is not a number", line) from None


class BookEvents:
    """Orderbook rows gathered event by event, with seq counted per (exchange, symbol, time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = ColumnRows(ORDERBOOK)
        self._seen: dict[tuple[str, str, int], int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(
        self,
        *,
        exchange: str,
        symbol: str,
        time_ns: int,
        bids: Levels,
        asks: Levels,
        snapshot: bool,
        line: int | None = None,
        **extra: Any,
    ) -> None:
        """One event: snapshot levels (best first) or absolute changes (amount 0 = delete).

        ``extra`` holds the event's sequence, first_sequence, prev_sequence, receive_time.
        """
        key = (exchange, symbol, time_ns)
        seq = self._seen.get(key, 0)
        self._seen[key] = seq + 1
        for side, levels in (("bid", bids), ("ask", asks)):
            for index, level in enumerate(levels):
                if len(level) < 2:
                    raise source_error(self.path, f"level {level!r} is not [price, amount]", line)
                price, amount = level[0], level[1]
                if snapshot:
                    kind, rank = "snapshot", index
                else:
                    kind, rank = ("delete" if _is_zero(amount, self.path, line) else "set"), None
                self.rows.add(
                    line,
                    exchange=exchange,
                    symbol=symbol,
                    time=time_ns,
                    seq=seq,
                    update_type=kind,
                    side=side,
                    price=price,
                    amount=amount,
                    level=rank,
                    **extra,
                )

    def table(self) -> pa.Table:
        return self.rows.table(self.path)


class QuoteRows:
    """Ticker rows gathered quote by quote, with seq counted per (exchange, symbol, time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = ColumnRows(TICKER)
        self._seen: dict[tuple[str, str, int], int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(
        self, *, exchange: str, symbol: str, time_ns: int, line: int | None, **values: Any
    ) -> None:
        """One quote or ticker message; ``values`` are ticker columns."""
        key = (exchange, symbol, time_ns)
        seq = self._seen.get(key, 0)
        self._seen[key] = seq + 1
        self.rows.add(line, exchange=exchange, symbol=symbol, time=time_ns, seq=seq, **values)

    def table(self) -> pa.Table:
        return self.rows.table(self.path)
