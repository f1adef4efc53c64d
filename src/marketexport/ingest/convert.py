"""Exact conversions shared by the importers: decimals, times, booleans.

The rule: a value that was text in the source is parsed from that text; a value that was a
binary float is taken at its shortest round-trip form (``repr``), which is the text the
writer of the file meant. Nothing goes through float arithmetic on the way to the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import DECIMAL_TYPE, Dataset
from ..decimals import INTEGER_DIGITS, text_to_decimal
from ..errors import SourceError

logger = logging.getLogger(__name__)

_SCALE = DECIMAL_TYPE.scale
_STORE_STEP = Decimal(1).scaleb(-_SCALE)
_WIDE = Context(prec=80)
# Decimal text as files write it: ASCII digits, one point, an optional exponent.
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_UNIT_FACTORS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1000, "ns": 1}


class ConvertError(ValueError):
    """A value cannot be converted; ``row`` is its 0-based row index when known."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


def _first_bad(values: Sequence[Any], check: Any) -> int | None:
    for index, value in enumerate(values):
        if value is not None and not check(value):
            return index
    return None


def decimal_from_text(
    values: pa.Array | Sequence[str | None], what: str = "value", *, from_float: bool = False
) -> pa.Array:
    """Decimal column from decimal text (plain or scientific), exactly or not at all.

    With ``from_float`` the text is a binary float's (its shortest repr, or a JSON number):
    such a text can need more than the store's 22 decimal places (a float's shortest repr has
    up to 17 significant digits, so values below about 1e-5 can), and is then rounded
    half-even to 22 places rather than refused. Text from a decimal source is never rounded.
    """
    array = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.string())
    array = pc.utf8_trim_whitespace(array)
    array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
    try:
        return text_to_decimal(array)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Find the offending value for the message (the fast path failed as a whole).
    texts = array.to_pylist()
    rounded = 0
    for index, text in enumerate(texts):
        if text is None:
            continue
        try:
            if not _PLAIN_NUMBER.fullmatch(text):
                raise InvalidOperation  # Decimal() also takes 1_000, ١٢٣ and full-width digits
            number = Decimal(text)
            if not number.is_finite():
                raise InvalidOperation
            exponent = number.as_tuple().exponent
            if isinstance(exponent, int) and exponent < -_SCALE:
                if from_float:
                    kept = number.quantize(_STORE_STEP, ROUND_HALF_EVEN, _WIDE)
                    rounded += kept != number
                    texts[index] = str(kept)
                elif number.quantize(_STORE_STEP) != number:
                    raise ConvertError(
                        f"{what} {text!r} has more than {_SCALE} decimal places", index
                    )
            if number.copy_abs() >= Decimal(10) ** INTEGER_DIGITS:  # exact, no rounding
                raise ConvertError(
                    f"{what} {text!r} is too large (at most {INTEGER_DIGITS} integer digits)",
                    index,
                )
        except InvalidOperation:
            raise ConvertError(f"{what} {text!r} is not a number", index) from None
    if rounded:
        logger.info("%d float values of %s rounded to %d decimal places", rounded, what, _SCALE)
    # Every value parsed with Python: build the column from the Decimals.
    return pa.array([Decimal(t) if t is not None else None for t in texts], DECIMAL_TYPE)


def decimal_from_float(values: pa.Array | Sequence[float | None], what: str = "value") -> pa.Array:
    """Decimal column from binary floats, through their shortest round-trip text."""
    floats = values.to_pylist() if isinstance(values, pa.Array) else list(values)
    bad = _first_bad(floats, math.isfinite)
    texts: list[str | None] = []
    for index, value in enumerate(floats):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            texts.append(None)
        elif index == bad:
            raise ConvertError(f"{what} {value!r} is not a finite number", index)
        else:
            texts.append(repr(float(value)))
    return decimal_from_text(texts, what, from_float=True)


def decimal_column(values: pa.Array, what: str = "value") -> pa.Array:
    """Decimal column from whatever a reader gave: text, floats, integers or decimals."""
    kind = values.type
    if pa.types.is_decimal(kind):
        return pc.cast(values, DECIMAL_TYPE)
    if pa.types.is_floating(kind):
        return decimal_from_float(values, what)
    if pa.types.is_integer(kind):
        # through text: Arrow casts int64 to decimal(38, 22) only if every int64 would fit
        # (it asks for precision 41), and refusing a too large value should name it
        return decimal_from_text(pc.cast(values, pa.string()), what)
    return decimal_from_text(values, what)


def epoch_to_ns(values: pa.Array | Sequence[int | None], unit: str) -> pa.Array:
    """timestamp[ns] column from integer epoch values in ``unit`` (s, ms, us, ns)."""
    array = values if isinstance(values, pa.Array) else pa.array(values, pa.int64())
    factor = _UNIT_FACTORS[unit]
    return pc.cast(pc.multiply_checked(pc.cast(array, pa.int64()), factor), pa.timestamp("ns"))


def guess_epoch_unit(sample: int) -> str:
    """The unit of an epoch number by its magnitude (dates 1973 to 2286)."""
    magnitude = abs(int(sample))
    if magnitude >= 10**17:
        return "ns"
    if magnitude >= 10**14:
        return "us"
    if magnitude >= 10**11:
        return "ms"
    return "s"


def boolean_from_text(values: pa.Array | Sequence[Any], what: str = "flag") -> pa.Array:
    """Boolean column from True/False, true/false, 1/0 or real booleans."""
    items = values.to_pylist() if isinstance(values, pa.Array) else list(values)
    out: list[bool | None] = []
    for index, value in enumerate(items):
        if value is None or isinstance(value, bool):
            out.append(value)
            continue
        text = str(value).strip().lower()
        if text in ("true", "1", "t", "yes"):
            out.append(True)
        elif text in ("false", "0", "f", "no"):
            out.append(False)
        elif text == "":
            out.append(None)
        else:
            raise ConvertError(f"{what} {value!r} is not a boolean (true/false)", index)
    return pa.array(out, pa.bool_())


def build_table(spec: Dataset, columns: dict[str, Any], rows: int) -> pa.Table:
    """A table in the dataset's store schema; missing nullable columns are null.

    Values may be Arrow arrays or Python sequences already of the right kind; scalars
    (a str such as the exchange name) are repeated for every row.
    """
    arrays = []
    for column in spec.columns:
        value = columns.get(column.name)
        if value is None and column.name == spec.digest_column:
            value = row_digests(spec, columns, rows)
        if value is None:
            if not column.nullable:
                raise ValueError(f"column {column.name!r} of {spec.name} is required")
            arrays.append(pa.nulls(rows, column.arrow_type))
            continue
        if isinstance(value, (str, bool, int)) and not isinstance(value, pa.Array):
            value = pa.array([value] * rows, column.arrow_type)
        elif not isinstance(value, (pa.Array, pa.ChunkedArray)):
            value = pa.array(value, column.arrow_type)
        elif value.type != column.arrow_type:
            value = pc.cast(value, column.arrow_type)
        arrays.append(value)
    table = pa.Table.from_arrays(arrays, schema=spec.store_schema)
    table.validate(full=True)
    return table


def row_digests(spec: Dataset, columns: dict[str, Any], rows: int) -> pa.Array:
    """Per row, a digest of the values in the dataset's columns outside its key.

    The values are written canonically before hashing: decimals without trailing zeros
    (``0.0090`` and ``0.009`` are one value), missing ones as null, each under its column's
    name; so the same observation always gives the same digest, whatever file it came from.
    The first 128 bits of SHA-256, as 32 hex digits.
    """
    names = [c.name for c in spec.columns if c.name not in spec.key]
    values = {name: _as_list(columns.get(name), rows) for name in names}
    digests = []
    for row in range(rows):
        fields = [[name, _canonical(values[name][row])] for name in names]
        text = json.dumps(fields, separators=(",", ":"), ensure_ascii=True)
        digests.append(hashlib.sha256(text.encode("ascii")).hexdigest()[:32])
    return pa.array(digests, pa.string())


def _as_list(value: Any, rows: int) -> list[Any]:
    if value is None:
        return [None] * rows
    if isinstance(value, (str, bool, int)):
        return [value] * rows
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return value.to_pylist()
    return list(value)


def _canonical(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, float):
        return _canonical(Decimal(repr(value)))
    return str(value)


def source_error(path: Any, message: str, line: int | None = None) -> SourceError:
    """A SourceError naming the file and, when known, the line (1-based)."""
    where = f"{path}" + (f", line {line}" if line is not None else "")
    return SourceError(f"{where}: {message}", path=str(path), line=line)
