"""Row building shared by the account, order-book, ticker and capture importers.

Sources of these datasets are JSON documents, capture lines and small CSVs whose rows are
read one at a time, so the importers collect values per column (``ColumnRows``) and
convert each column once at the end with the exact conversions of :mod:`.convert`. A
value that cannot be converted becomes a SourceError naming the file and the source line.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..datasets import Dataset
from ..errors import RequestError, SourceError
from ..timeparse import parse_instant
from . import Hints
from .convert import ConvertError, build_table, decimal_from_text, source_error

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
STORE_PLACES = 18
STORE_STEP = Decimal(1).scaleb(-STORE_PLACES)


class ColumnRows:
    """Values of one dataset gathered row by row, with the source line of each row."""

    def __init__(self, spec: Dataset) -> None:
        self.spec = spec
        self.values: dict[str, list[Any]] = {name: [] for name in spec.column_names}
        self.lines: list[int | None] = []

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, line: int | None = None, **values: Any) -> None:
        """Append one row; columns not given are null."""
        unknown = set(values) - self.values.keys()
        if unknown:
            raise KeyError(f"{self.spec.name} has no column(s) {sorted(unknown)}")
        for name, column in self.values.items():
            column.append(values.get(name))
        self.lines.append(line)

    def table(self, path: Path) -> pa.Table:
        """The rows as a store-schema table; a bad value raises naming file and line."""
        columns: dict[str, Any] = {}
        for column in self.spec.columns:
            values = self.values[column.name]
            if column.name == self.spec.digest_column and all(v is None for v in values):
                continue  # build_table computes it from the other columns
            if column.nullable and all(value is None for value in values):
                continue
            if column.kind == "decimal":
                columns[column.name] = self._decimals(path, column.name, values)
            else:
                self._check_required(path, column.name, column.nullable, values)
                columns[column.name] = pa.array(values, column.arrow_type)
        try:
            return build_table(self.spec, columns, len(self))
        except (ValueError, pa.ArrowException) as exc:
            raise source_error(path, f"cannot build {self.spec.name} rows: {exc}") from None

    def _decimals(self, path: Path, name: str, values: list[Any]) -> pa.Array:
        texts = [None if value is None else _number_text(value) for value in values]
        try:
            return decimal_from_text(texts, name)
        except ConvertError as exc:
            line = self.lines[exc.row] if exc.row is not None else None
            raise source_error(path, str(exc), line) from None

    def _check_required(self, path: Path, name: str, nullable: bool, values: list[Any]) -> None:
        if nullable:
            return
        for index, value in enumerate(values):
            if value is None:
                raise source_error(path, f"{name} is missing", self.lines[index])


@contextmanager
def naming_file(path: Path) -> Iterator[None]:
    """Make every SourceError raised inside name ``path`` (symbol errors do not)."""
    try:
        yield
    except SourceError as exc:
        if str(path) in exc.message:
            raise
        raise SourceError(f"{path}: {exc.message}", **{**exc.attrs, "path": str(path)}) from None


def _number_text(value: Any) -> str:
    """Text of a value: JSON strings as written; JSON numbers and floats are binary floats
    written as text, rounded half-even to the store's scale (22 places) when they need more."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -STORE_PLACES:
            value = value.quantize(STORE_STEP, ROUND_HALF_EVEN, Context(prec=80))
    return str(value)


def ranks(keys: Iterable[Hashable]) -> list[int]:
    """For each key in order, how many earlier items had the same key (0, 1, 2...)."""
    seen: dict[Hashable, int] = {}
    out: list[int] = []
    for key in keys:
        count = seen.get(key, 0)
        out.append(count)
        seen[key] = count + 1
    return out


def iso_to_ns(text: str, path: Path, line: int | None = None) -> int:
    """Nanoseconds since the epoch of ISO 8601 text (up to 9 fraction digits; none = UTC)."""
    value = text.strip()
    if not value or value.isdigit():
        raise source_error(path, f"time {text!r} is not an ISO 8601 date-time", line)
    try:
        return parse_instant(value, what="time")
    except RequestError:
        raise source_error(path, f"time {text!r} is not an ISO 8601 date-time", line) from None


def seconds_text_to_ns(text: str, path: Path, line: int | None = None) -> int:
    """Nanoseconds of decimal epoch seconds written as text (``1626992741.06217``)."""
    try:
        number = Decimal(text)
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise source_error(path, f"time {text!r} is not epoch seconds", line) from None
    return int(number * NS_PER_S)


def integer(value: Any, what: str, path: Path, line: int | None = None) -> int:
    """An integer from a JSON number or digit text (ccxt keeps Binance integers as text)."""
    if isinstance(value, bool):
        raise source_error(path, f"{what} {value!r} is not a whole number", line)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise source_error(path, f"{what} {value!r} is not a whole number", line)


def boolean(value: Any, what: str, path: Path, line: int | None = None) -> bool | None:
    """A boolean from a JSON boolean or true/false text; None stays None."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise source_error(path, f"{what} {value!r} is not true or false", line)


def load_json(path: Path, data: bytes | None = None) -> Any:
    """A JSON document with every non-integer number kept as its exact Decimal text."""
    raw = path.read_bytes() if data is None else data
    try:
        return json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise source_error(path, f"not valid JSON: {exc}", line) from None


def parse_json_line(text: str, path: Path, line: int) -> Any:
    """One JSON message of a capture line, numbers kept exact."""
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise source_error(path, f"not valid JSON: {exc.msg}", line) from None


def field(record: dict[str, Any], name: str, path: Path, line: int | None = None) -> Any:
    """A required member of a JSON object, or a SourceError naming it."""
    try:
        return record[name]
    except (KeyError, TypeError):
        raise source_error(path, f"field {name!r} is missing", line) from None


def need_exchange(hints: Hints, path: Path, what: str) -> str:
    """The --exchange hint, or an error saying why the file needs it."""
    if hints.exchange:
        return hints.exchange.strip().lower()
    raise SourceError(
        f"{path}: {what} does not name its exchange; give it with --exchange "
        "(e.g. --exchange binance)",
        path=str(path),
    )


def strip_currency(cell: str, path: Path, line: int) -> tuple[str, str]:
    """Split an amount cell that carries its currency (``2.00000000 ETH``)."""
    parts = cell.split()
    if len(parts) != 2:
        raise source_error(path, f"amount {cell!r} is not '<number> <currency>'", line)
    return parts[0], parts[1].upper()
