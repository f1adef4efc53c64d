"""Bybit historical order-book downloads (``<date>_<SYMBOL>_ob<depth>.data``, often zipped).

One JSON message per line, as Bybit's websocket sends them:
``{"topic": "orderbook.500.XRPUSDT", "type": "snapshot"|"delta", "ts": ms,
"data": {"s", "b": [[price, size]...], "a": [...], "u", "seq"}, "cts": ms}``. A snapshot
lists every level best first; a delta gives new absolute sizes, size "0" deleting the
level. Rows take ``ts`` as time and ``u`` as sequence. Depth 500 exists only for
derivatives (linear when the quote settles, inverse for USD contracts); Bybit's spot and
derivative files share the depths 1, 50 and 200, so those need ``--symbol``.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from . import Hints, Parsed
from .book_levels import BookEvents
from .convert import source_error
from .records import NS_PER_MS, field, integer, naming_file, parse_json_line
from .symbols import unify_symbol

DERIVATIVE_ONLY_DEPTHS = ("500", "1000")
_NAME = re.compile(r"ob\d+\.data(\.zip)?$")


def read_lines(path: Path) -> list[str]:
    """The text lines of a ``.data`` file, or of the one file inside a ``.zip``."""
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise source_error(path, f"zip holds {len(members)} files (expected one)")
                raw = archive.read(members[0])
        else:
            raw = path.read_bytes()
        return io.StringIO(raw.decode("utf-8")).read().splitlines()
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise source_error(path, f"cannot read the file: {exc}") from None


def bybit_symbol(topic: str, native: str, hints: Hints, path: Path, line: int) -> str:
    """Unified symbol from the topic's depth and the native symbol (or --symbol)."""
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != "orderbook":
        raise source_error(path, f"topic {topic!r} is not orderbook.<depth>.<symbol>", line)
    if parts[1] in DERIVATIVE_ONLY_DEPTHS:
        return unify_symbol(native, "bybit", "derivative")
    if hints.symbol:
        return unify_symbol(hints.symbol, "bybit", "derivative")
    raise source_error(
        path,
        f"{native}: depth {parts[1]} exists for Bybit spot and derivatives alike; say which "
        "market with --symbol BASE/QUOTE (spot) or BASE/QUOTE:SETTLE (derivatives)",
        line,
    )


def add_message(
    book: BookEvents, message: Any, hints: Hints, path: Path, line: int, symbols: dict[str, str]
) -> None:
    """One snapshot or delta message as orderbook rows."""
    kind = field(message, "type", path, line)
    if kind not in ("snapshot", "delta"):
        raise source_error(path, f"message type {kind!r} is not snapshot or delta", line)
    data = field(message, "data", path, line)
    native = str(field(data, "s", path, line))
    if native not in symbols:
        topic = str(field(message, "topic", path, line))
        symbols[native] = bybit_symbol(topic, native, hints, path, line)
    book.add(
        exchange="bybit",
        symbol=symbols[native],
        time_ns=integer(field(message, "ts", path, line), "ts", path, line) * NS_PER_MS,
        bids=field(data, "b", path, line),
        asks=field(data, "a", path, line),
        snapshot=kind == "snapshot",
        line=line,
        sequence=integer(data["u"], "u", path, line) if "u" in data else None,
    )


class BybitBookImporter:
    """Bybit ``orderbook.<depth>.<symbol>`` JSON-lines downloads (plain or zipped)."""

    name = "bybit-orderbook"

    def sniff(self, path: Path, head: bytes) -> bool:
        name = path.name.lower()
        if _NAME.search(name) is None:
            return False
        return head.startswith(b"PK") or head.startswith(b'{"topic":"orderbook.')

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            return self._read(path, hints)

    def _read(self, path: Path, hints: Hints) -> list[Parsed]:
        book = BookEvents(path)
        symbols: dict[str, str] = {}
        for number, text in enumerate(read_lines(path), start=1):
            if not text.strip():
                continue
            add_message(book, parse_json_line(text, path, number), hints, path, number, symbols)
        if not len(book):
            raise source_error(path, "no order-book messages found")
        return [Parsed(book.rows.spec, book.table())]


IMPORTERS = [BybitBookImporter()]
