"""CSV: a header line, then one line per row; RFC 4180 quoting, ``\\n`` line ends.

Nulls are empty fields; an empty string is written as ``""`` so that the two stay apart.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..render import joined_bytes, render_plain
from .base import FormatSpec, WriterContext
from .readback import summarize_csv
from .text import csv_quote

SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class CsvWriter:
    """Renders batches column-wise into CSV text."""

    def __init__(self, context: WriterContext) -> None:
        self._context = context
        self._text_columns = {c.name for c in context.columns if c.kind in ("text", "id")}
        self._guard = bool(context.options.get("csv_safe_for_spreadsheets"))
        self._guarded_cells = 0

    def header(self) -> bytes:
        # Plain Python: building an Arrow array here would make pyarrow import pandas.
        names = [_quote_name(c.name) for c in self._context.columns]
        return (",".join(names) + "\n").encode()

    def encode(self, batch: pa.RecordBatch) -> tuple[bytes, int]:
        fields: list[pa.Array] = []
        guarded = 0
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            text = render_plain(column)
            if name in self._text_columns:
                if self._guard:
                    text, count = _neutralise(text)
                    guarded += count
                text = csv_quote(text)
            fields.append(pc.fill_null(text, ""))
        if not fields:
            return b"", 0
        fields[-1] = pc.binary_join_element_wise(fields[-1], "\n", "")
        lines = pc.binary_join_element_wise(*fields, ",")
        return joined_bytes(lines), guarded

    def line_layout(self) -> str | None:
        """``csv``: a store may hand over finished lines in this layout instead of batches
        (not while cells are guarded for spreadsheets, which the writer does itself)."""
        return None if self._guard else "csv"

    def encode_lines(self, batch: pa.RecordBatch) -> tuple[bytes | memoryview, int]:
        """A batch of finished lines (one string column, each line with its ``\\n``)."""
        return joined_bytes(batch.column(0)), 0

    def write(self, encoded: tuple[bytes, int]) -> bytes:
        data, guarded = encoded
        self._guarded_cells += guarded
        return data

    def footer(self) -> bytes:
        return b""

    def notes(self) -> dict[str, Any]:
        if not self._guard:
            return {}
        return {"spreadsheet_guard": {"cells_prefixed": self._guarded_cells}}


def _quote_name(name: str) -> str:
    if name == "" or any(ch in name for ch in ',"\r\n'):
        return '"' + name.replace('"', '""') + '"'
    return name


def _neutralise(text: pa.Array) -> tuple[pa.Array, int]:
    """Prefix cells that a spreadsheet would read as a formula with a single quote."""
    starts = pc.match_substring_regex(text, r"^[=+\-@\t\r]")
    count = pc.sum(starts).as_py() or 0
    if not count:
        return text, 0
    prefixed = pc.binary_join_element_wise("'", text, "")
    return pc.if_else(starts, prefixed, text), int(count)


CSV = FormatSpec(
    summarize=summarize_csv,
    name="csv",
    extension=".csv",
    factory=CsvWriter,
    options=("csv_safe_for_spreadsheets",),
)
