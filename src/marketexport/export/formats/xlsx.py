"""Excel workbooks (xlsx), streamed: sheet XML built column-wise, deflated into the zip as
rows arrive, in constant memory.

Layout: each sheet starts with one bold header row (time columns say ``(UTC)``), frozen,
with an autofilter and column widths fitted to the header and the sheet's first rows. A
sheet holds at most 1,048,576 rows, the header included; the next rows continue on a new
sheet with its own header, so no row is ever dropped. Sheets are named after the dataset
and the export rows they hold (``ohlcv 1-1048575``, ``ohlcv 1048576-1500000``).

Values follow :mod:`.xlsx_cells`: numbers only where Excel keeps them exactly, text never
as a formula, date-times in UTC. A text over 32,767 characters stops the export with a
:class:`FormatError` naming row and column, and the sink removes the partial file. The
manifest notes list the sheets, every column written (wholly or partly) as text, and the
cells whose characters were escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ...errors import FormatError
from . import xlsx_parts as parts
from .base import FormatSpec, WriterContext
from .xlsx_cells import MAX_CELL_CHARS, column_cells, header_cell
from .xmltext import assemble, value_bytes
from .zipstream import ENTRY_LIMIT, ZipStream

ROWS_PER_SHEET = 1_048_576  # Excel's limit, the header row included
SHEET_BYTES = ENTRY_LIMIT - (64 << 20)  # room for the sheet's closing XML
MAX_WIDTH = 60.0
WRITE_SLICE_ROWS = 8_192
_TEXT_REASONS = {
    "id": "identifier: exact digits as text",
    "decimal": "more than 15 significant digits (Excel would round)",
    "integer": "more than 15 significant digits (Excel would round)",
    "time": "finer than milliseconds or outside Excel's calendar (1900-03-01 to 9999)",
}


@dataclass
class EncodedBatch:
    """One batch rendered to row XML (all but the row's opening tag), with its findings."""

    bodies: pa.Array
    widths: list[int]
    text_cells: dict[str, int]
    escaped_cells: dict[str, int]
    too_long: tuple[str, int, int] | None = None  # (column, row in the batch, length)


@dataclass
class _Sheet:
    index: int
    first_row: int
    rows: int = 0
    bytes: int = 0


@dataclass
class _Tally:
    text_cells: dict[str, int] = field(default_factory=dict)
    escaped_cells: dict[str, int] = field(default_factory=dict)

    def add(self, batch: EncodedBatch) -> None:
        for target, found in (
            (self.text_cells, batch.text_cells),
            (self.escaped_cells, batch.escaped_cells),
        ):
            for name, count in found.items():
                if count:
                    target[name] = target.get(name, 0) + count


class XlsxWriter:
    """Writes one workbook; ``encode`` may run on several threads, ``write`` on one."""

    rows_per_sheet = ROWS_PER_SHEET
    sheet_bytes = SHEET_BYTES

    def __init__(self, context: WriterContext) -> None:
        # build_request refuses this already; a writer made by hand is held to it too.
        XLSX.check_compression(context.compression)
        self._context = context
        self._kinds = [column.kind for column in context.columns]
        self._zip = ZipStream()
        self._sheets: list[parts.SheetInfo] = []
        self._open: _Sheet | None = None
        self._rows_done = 0
        self._widths: list[int] | None = None
        self._tally = _Tally()
        self._header = "".join(
            header_cell(f"{c.name} (UTC)" if c.kind == "time" else c.name) for c in context.columns
        )

    def header(self) -> bytes:
        return b""

    def encode(self, batch: pa.RecordBatch) -> EncodedBatch:
        pieces: list[str | pa.Array] = []
        widths: list[int] = []
        text_cells: dict[str, int] = {}
        escaped: dict[str, int] = {}
        too_long: tuple[str, int, int] | None = None
        for column, kind, array in zip(
            self._context.columns, self._kinds, batch.columns, strict=True
        ):
            cells = column_cells(array, kind)
            pieces.extend(cells.pieces)
            widths.append(cells.width)
            text_cells[column.name] = cells.text_cells
            escaped[column.name] = cells.escaped_cells
            if cells.too_long is not None and (too_long is None or cells.too_long[0] < too_long[1]):
                too_long = (column.name, *cells.too_long)
        pieces.append("</row>")
        bodies = assemble(pieces, batch.num_rows)
        return EncodedBatch(bodies, widths, text_cells, escaped, too_long)

    def write(self, encoded: EncodedBatch) -> bytes:
        if encoded.too_long is not None:
            self._refuse(*encoded.too_long)
        self._tally.add(encoded)
        seen = self._widths or encoded.widths
        self._widths = [max(a, b) for a, b in zip(seen, encoded.widths, strict=True)]
        out: list[bytes] = []
        bodies = encoded.bodies
        while len(bodies):
            if self._open is None:
                out.append(self._start_sheet())
            sheet = self._open
            assert sheet is not None
            take = self._rows_that_fit(sheet, bodies)
            out.append(self._rows(sheet, bodies.slice(0, take)))
            bodies = bodies.slice(take)
            if sheet.rows >= self.rows_per_sheet - 1 or len(bodies):
                out.append(self._end_sheet())
        return b"".join(out)

    def footer(self) -> bytes:
        out: list[bytes] = []
        if not self._sheets and self._open is None:
            out.append(self._start_sheet())
        if self._open is not None:
            out.append(self._end_sheet())
        count = len(self._sheets)
        out.append(self._zip.add("xl/workbook.xml", parts.workbook(self._sheets)))
        out.append(self._zip.add("xl/_rels/workbook.xml.rels", parts.workbook_relationships(count)))
        out.append(self._zip.add("xl/styles.xml", parts.styles()))
        out.append(self._zip.add("_rels/.rels", parts.root_relationships()))
        out.append(self._zip.add("[Content_Types].xml", parts.content_types(count)))
        out.append(self._zip.finish())
        return b"".join(out)

    def notes(self) -> dict[str, Any]:
        as_text = {}
        for column in self._context.columns:
            count = self._tally.text_cells.get(column.name, 0)
            if count:
                as_text[column.name] = {"cells": count, "reason": _TEXT_REASONS[column.kind]}
        notes: dict[str, Any] = {
            "sheets": [sheet.to_dict() for sheet in self._sheets],
            "written_as_text": as_text,
        }
        if self._tally.escaped_cells:
            notes["escaped_characters"] = {
                "form": "_xHHHH_ (ECMA-376 ST_Xstring; Excel and LibreOffice decode it)",
                "cells": dict(self._tally.escaped_cells),
            }
        return notes

    def _refuse(self, column: str, index: int, length: int) -> None:
        row = self._rows_done + index + 1
        raise FormatError(
            f"xlsx cannot hold the value in row {row}, column {column!r}: {length:,} "
            f"characters, more than Excel's {MAX_CELL_CHARS:,} per cell; export aborted, "
            "nothing written (choose csv, jsonl, parquet or xml for this data)",
            row=row,
            column=column,
            length=length,
        )

    def _fit_widths(self) -> list[float]:
        """Column widths in characters: the header's, or the widest value seen so far."""
        values = self._widths or [0] * len(self._kinds)
        widths = []
        for column, width in zip(self._context.columns, values, strict=True):
            header = len(column.name) + (6 if column.kind == "time" else 0) + 3  # filter button
            widths.append(min(float(max(header, width) + 2), MAX_WIDTH))
        return widths

    def _start_sheet(self) -> bytes:
        index = len(self._sheets) + 1
        self._open = _Sheet(index, self._rows_done + 1)
        start = parts.sheet_start(self._fit_widths(), self._header, selected=index == 1)
        return self._zip.start(f"xl/worksheets/sheet{index}.xml") + self._zip.write(start)

    def _end_sheet(self) -> bytes:
        sheet = self._open
        assert sheet is not None
        columns = len(self._kinds)
        name = parts.sheet_name(self._context.dataset, sheet.first_row, sheet.rows, sheet.index)
        self._sheets.append(parts.SheetInfo(name, sheet.rows, sheet.first_row, columns))
        self._open = None
        return self._zip.write(parts.sheet_end(columns, sheet.rows)) + self._zip.end()

    def _rows_that_fit(self, sheet: _Sheet, bodies: pa.Array) -> int:
        """Rows of ``bodies`` that the open sheet still has room for (at least one)."""
        take = min(len(bodies), self.rows_per_sheet - 1 - sheet.rows)
        room = self.sheet_bytes - sheet.bytes
        sizes = pc.binary_length(bodies.slice(0, take))
        if pc.sum(sizes).as_py() + 32 * take > room:
            # Only sheets of very long rows get here: keep the zip entry below 4 GiB.
            ends = pc.cumulative_sum(pc.add(sizes, 32))
            take = int(pc.sum(pc.less_equal(ends, room)).as_py() or 0)
        return max(take, 1)

    def _rows(self, sheet: _Sheet, bodies: pa.Array) -> bytes:
        """The rows' XML with their numbers, deflated; in slices, to keep memory small."""
        out = []
        for start in range(0, len(bodies), WRITE_SLICE_ROWS):
            part = bodies.slice(start, WRITE_SLICE_ROWS)
            first = sheet.rows + 2  # sheet row 1 is the header
            ones = pc.fill_null(pa.nulls(len(part), pa.int64()), 1)
            numbers = pc.cast(pc.add(pc.cumulative_sum(ones), first - 1), pa.string())
            rows = pc.binary_join_element_wise('<row r="', numbers, '">', part, "")
            # Deflated straight from Arrow's buffer: no copy of the XML into Python bytes.
            data = value_bytes(rows)
            sheet.rows += len(part)
            sheet.bytes += len(data)
            self._rows_done += len(part)
            out.append(self._zip.write(data))
        return b"".join(out)


def summarize_xlsx(stream: BinaryIO, time_column: str | None, path: Path | None) -> dict[str, Any]:
    from .office_readback import summarize_workbook

    return summarize_workbook(path, time_column)


XLSX = FormatSpec(
    name="xlsx",
    extension=".xlsx",
    factory=XlsxWriter,
    binary=True,
    compresses_inside=True,
    compressions=("none",),
    compressions_note="the workbook is a zip archive compressed inside",
    summarize=summarize_xlsx,
)
