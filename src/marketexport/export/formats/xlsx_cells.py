"""Cells of an xlsx sheet, built column-wise with Arrow kernels.

Each column of a batch becomes its part of the row template: a constant before the value,
the values, a constant after (or one full cell per row where cells differ in kind). The
rules, each chosen so that what Excel shows is exactly what the store holds:

- text and ids: inline strings, never formulas, whatever they start with. Characters
  XML 1.0 cannot carry, CR, and a literal ``_xHHHH_`` are written in the format's own
  escape ``_xHHHH_`` (ECMA-376 Part 1, 22.9.2.19 ST_Xstring), which Excel and LibreOffice
  decode when they read the file. A value of more than 32,767 characters (UTF-16 units,
  as Excel counts) is reported, never cut.
- decimals and integers: numbers when they have at most 15 significant digits, which
  Excel keeps exactly; otherwise the exact digits as text.
- times in milliseconds: Excel date-time serial numbers (days since 1899-12-30, UTC) with a
  ``yyyy-mm-dd hh:mm:ss.000`` format; finer units, which Excel can neither show nor keep,
  and instants outside Excel's calendar are ISO 8601 text.
- booleans: Excel booleans. Nulls: empty cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ..render import render_plain, render_time
from .xmltext import (
    ILLEGAL_OR_CR_PATTERN,
    assemble,
    constant_text,
    escape_markup,
    needs_escaping,
    rewrite_matching,
    value_bytes,
)

MAX_CELL_CHARS = 32_767
EXACT_DIGITS = 15
TIME_STYLE = 1
HEADER_STYLE = 2
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
EMPTY_CELL = "<c/>"
_TEXT_OPEN = '<c t="inlineStr"><is><t>'
_TEXT_OPEN_SPACED = '<c t="inlineStr"><is><t xml:space="preserve">'
_TEXT_CLOSE = "</t></is></c>"
_NUMBER_OPEN = "<c><v>"
_TIME_OPEN = f'<c s="{TIME_STYLE}"><v>'
_VALUE_CLOSE = "</v></c>"
_MS_PER_DAY = 86_400_000
_SERIAL_OF_EPOCH = 25_569  # 1970-01-01 in the 1900 date system
# Excel's 1900 date system is exact from 1900-03-01 (serial 61) to 9999-12-31.
_FIRST_EXACT_MS = -2_203_891_200_000
_END_MS = 253_402_300_800_000
# Values that need the ST_Xstring escape: in RE2 syntax (Arrow) to find them, in Python's
# to rewrite them. A literal "_xHHHH_" gets its underscore escaped as _x005F_.
_ESCAPE_PATTERN = ILLEGAL_OR_CR_PATTERN + r"|_x[0-9A-Fa-f]{4}_"
_XSTRING_SPECIAL = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x08\x0b-\x0d\x0e-\x1f\ufffe\uffff]")


@dataclass
class ColumnCells:
    """One column's part of the rows of one batch, and what the writer must know of it."""

    pieces: list[str | pa.Array]
    width: int = 0
    text_cells: int = 0
    escaped_cells: int = 0
    too_long: tuple[int, int] | None = None  # (row in the batch, length) of the first


def xstring_escape(value: str) -> str:
    """The ST_Xstring form of ``value``: ``_xHHHH_`` for what XML cannot carry."""
    return _XSTRING_SPECIAL.sub(lambda match: f"_x{ord(match.group()):04X}_", value)


def _utf16_length(value: str) -> int:
    return len(value) + sum(1 for char in value if ord(char) > 0xFFFF)


def _first_too_long(column: pa.Array) -> tuple[int, int] | None:
    """(index, length) of the first value over Excel's cell limit, counted as Excel does."""
    # A value's UTF-8 byte count is at least its UTF-16 unit count, so most columns are
    # cleared by their byte lengths alone.
    candidates = pc.greater(pc.binary_length(column), MAX_CELL_CHARS)
    if not pc.any(candidates).as_py():
        return None
    for index in pc.indices_nonzero(candidates).to_pylist():
        length = _utf16_length(column[index].as_py())
        if length > MAX_CELL_CHARS:
            return index, length
    return None


def string_column(column: pa.Array, is_id: bool) -> ColumnCells:
    """Inline-string cells of a text or id column."""
    same = constant_text(column)
    if same is not None:
        # One value in every row: its cell becomes part of the row template.
        one = _string_cells(column.slice(0, 1))
        cell = assemble(one.pieces, 1)[0].as_py()
        return ColumnCells(
            [cell],
            width=one.width,
            text_cells=len(column) if is_id else 0,
            escaped_cells=one.escaped_cells * len(column),
            too_long=one.too_long,
        )
    cells = _string_cells(column)
    if is_id:
        cells.text_cells = len(column) - column.null_count
    return cells


def _string_cells(column: pa.Array) -> ColumnCells:
    text = column
    escaped = 0
    if needs_escaping(text, underscore=True):
        text, mask = rewrite_matching(text, _ESCAPE_PATTERN, xstring_escape)
        if mask is not None:
            escaped = int(pc.sum(mask).as_py() or 0)
        text = escape_markup(text)
    pieces = _simple(_TEXT_OPEN, text, _TEXT_CLOSE)
    # Leading or trailing white space survives only under xml:space="preserve".
    if _has_white_space(column):
        spaced = pc.fill_null(pc.match_substring_regex(column, r"^\s|\s$"), False)
        if pc.any(spaced).as_py():
            cells = pc.if_else(
                spaced,
                pc.binary_join_element_wise(_TEXT_OPEN_SPACED, text, _TEXT_CLOSE, ""),
                pc.binary_join_element_wise(_TEXT_OPEN, text, _TEXT_CLOSE, ""),
            )
            pieces = [pc.fill_null(cells, EMPTY_CELL)]
    return ColumnCells(
        pieces, width=_width(column), escaped_cells=escaped, too_long=_first_too_long(column)
    )


def _has_white_space(column: pa.Array) -> bool:
    raw = bytes(value_bytes(column))
    return len(raw.translate(None, b" \t\n\r")) != len(raw)


def _simple(open_tag: str, values: pa.Array, close_tag: str) -> list[str | pa.Array]:
    """Pieces for a column of one cell kind: constants around the values, or full cells."""
    if values.null_count == 0:
        return [open_tag, values, close_tag]
    cells = pc.binary_join_element_wise(open_tag, values, close_tag, "")
    return [pc.fill_null(cells, EMPTY_CELL)]


def _width(values: pa.Array) -> int:
    if len(values) == 0 or values.null_count == len(values):
        return 0
    return int(pc.max(pc.binary_length(values)).as_py() or 0)


def _too_many_digits(text: pa.Array) -> pa.Array | None:
    """Mask of numbers with more than 15 significant digits, or None when there are none."""
    # 15 characters cannot hold 16 digits, so only longer texts are counted.
    candidates = pc.fill_null(pc.greater(pc.binary_length(text), EXACT_DIGITS), False)
    if not pc.any(candidates).as_py():
        return None
    longer = pc.filter(text, candidates)
    digits = pc.replace_substring(pc.replace_substring(longer, "-", ""), ".", "")
    digits = pc.utf8_rtrim(pc.utf8_ltrim(digits, "0"), "0")
    found = pc.greater(pc.utf8_length(digits), EXACT_DIGITS)
    if not pc.any(found).as_py():
        return None
    return pc.replace_with_mask(candidates, candidates, found)


def number_column(column: pa.Array) -> ColumnCells:
    """Cells of a decimal or integer column: numbers, or text where Excel would round."""
    text = render_plain(column)
    width = min(_width(text), 20)
    long = _too_many_digits(text)
    if long is None:
        return ColumnCells(_simple(_NUMBER_OPEN, text, _VALUE_CLOSE), width=width)
    numbers = pc.binary_join_element_wise(_NUMBER_OPEN, text, _VALUE_CLOSE, "")
    texts = pc.binary_join_element_wise(_TEXT_OPEN, text, _TEXT_CLOSE, "")
    cells = pc.fill_null(pc.if_else(long, texts, numbers), EMPTY_CELL)
    return ColumnCells([cells], width=width, text_cells=int(pc.sum(long).as_py() or 0))


def boolean_column(column: pa.Array) -> ColumnCells:
    flags = pc.if_else(column, "1", "0")
    return ColumnCells(_simple('<c t="b"><v>', flags, _VALUE_CLOSE), width=5)


def time_column(column: pa.Array) -> ColumnCells:
    """Date-time serials for millisecond times inside Excel's calendar, else ISO text."""
    if column.type.unit != "ms":
        iso = render_time(column)
        cells = pc.binary_join_element_wise(_TEXT_OPEN, iso, _TEXT_CLOSE, "")
        count = len(column) - column.null_count
        return ColumnCells(_simple_cells(cells), width=_width(iso), text_cells=count)
    epoch_ms = pc.cast(column, pa.int64())
    serial = pc.add(pc.divide(pc.cast(epoch_ms, pa.float64()), float(_MS_PER_DAY)), 25569.0)
    serial_text = pc.cast(serial, pa.string())
    outside = pc.or_(pc.less(epoch_ms, _FIRST_EXACT_MS), pc.greater_equal(epoch_ms, _END_MS))
    outside = pc.fill_null(outside, False)
    width = len(TIME_FORMAT)
    if not pc.any(outside).as_py():
        return ColumnCells(_simple(_TIME_OPEN, serial_text, _VALUE_CLOSE), width=width)
    dates = pc.binary_join_element_wise(_TIME_OPEN, serial_text, _VALUE_CLOSE, "")
    texts = pc.binary_join_element_wise(_TEXT_OPEN, render_time(column), _TEXT_CLOSE, "")
    cells = pc.fill_null(pc.if_else(outside, texts, dates), EMPTY_CELL)
    return ColumnCells([cells], width=width, text_cells=int(pc.sum(outside).as_py() or 0))


def _simple_cells(cells: pa.Array) -> list[str | pa.Array]:
    return [pc.fill_null(cells, EMPTY_CELL)] if cells.null_count else [cells]


def column_cells(column: pa.Array, kind: str) -> ColumnCells:
    """The cells of one column of a batch, by the dataset column's kind."""
    if kind in ("text", "id"):
        return string_column(column, kind == "id")
    if kind == "time":
        return time_column(column)
    if kind == "boolean":
        return boolean_column(column)
    return number_column(column)


def header_cell(name: str) -> str:
    """A bold inline-string header cell."""
    text = escape_markup(pa.array([xstring_escape(name)], pa.string()))[0].as_py()
    return f'<c t="inlineStr" s="{HEADER_STYLE}"><is><t>{text}</t></is></c>'
