"""Exact text forms of Arrow columns, computed column-wise with Arrow kernels.

Every text format (CSV, JSON, XML, the text cells of Excel) renders values through here, so
that a value has one text form whatever the format or the store:

- decimals in plain notation with no trailing zeros (``0.00001234``, ``78189.2``, ``0``),
  never E-notation and never float noise;
- times as ISO 8601 UTC with ``Z`` at the export's unit (``2024-01-31T12:00:00.123Z``);
- integers in decimal digits, booleans as ``true``/``false``.

Nulls stay null; each format decides how to write them.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

MAX_SAFE_JSON_INT = 2**53


def render_decimal(column: pa.Array) -> pa.Array:
    """Plain-notation text of a decimal column."""
    text = pc.cast(column, pa.string())
    # Arrow writes zero as 0E-18 and values below 1e-6 in E-notation; zero is common
    # (volumes, fees), the rest is rare enough for Python's Decimal to handle.
    text = pc.if_else(pc.equal(column, pa.scalar(0, column.type)), "0", text)
    has_exponent = pc.match_substring(text, "E")
    if pc.any(has_exponent).as_py():
        values = text.to_pylist()
        flags = has_exponent.to_pylist()
        fixed = [
            _plain(value) if flag else value for value, flag in zip(values, flags, strict=True)
        ]
        text = pa.array(fixed, pa.string())
    if column.type.scale > 0:
        trimmed = pc.utf8_rtrim(text, characters="0")
        text = pc.if_else(
            pc.match_substring(text, "."), pc.utf8_rtrim(trimmed, characters="."), text
        )
    return text


def _plain(value: str | None) -> str | None:
    if value is None:
        return None
    number = Decimal(value).normalize()
    rendered = format(number, "f")
    return "0" if rendered in ("0", "-0") else rendered


def render_time(column: pa.Array) -> pa.Array:
    """ISO 8601 UTC text with ``Z``; the fraction has the column's unit's digits."""
    unit = column.type.unit
    naive = pc.cast(column, pa.timestamp(unit))
    text = pc.cast(naive, pa.string())
    text = pc.utf8_replace_slice(text, 10, 11, "T")
    return pc.binary_join_element_wise(text, "Z", "")


def render_boolean(column: pa.Array) -> pa.Array:
    return pc.if_else(column, "true", "false")


def render_plain(column: pa.Array) -> pa.Array:
    """Text of any column in its exact form (strings are returned unchanged)."""
    kind = column.type
    if pa.types.is_decimal(kind):
        return render_decimal(column)
    if pa.types.is_timestamp(kind):
        return render_time(column)
    if pa.types.is_boolean(kind):
        return render_boolean(column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    return pc.cast(column, pa.string())


def joined_bytes(lines: pa.Array) -> bytes:
    """The concatenation of every value of a string array, copied once."""
    if len(lines) == 0:
        return b""
    width = 8 if pa.types.is_large_string(lines.type) else 4
    offsets = lines.buffers()[1]
    data = lines.buffers()[2]
    if data is None or offsets is None:
        return b""
    start_at = lines.offset * width
    end_at = (lines.offset + len(lines)) * width
    first = int.from_bytes(offsets[start_at : start_at + width].to_pybytes(), "little")
    last = int.from_bytes(offsets[end_at : end_at + width].to_pybytes(), "little")
    return data[first:last].to_pybytes()
