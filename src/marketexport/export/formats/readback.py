"""Reading payloads back for ``verify``: rows and first/last time, format by format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from ...errors import FormatError
from ..render import render_time


def _summary(rows: int, first: Any, last: Any) -> dict[str, Any]:
    return {"rows": rows, "first_time": first, "last_time": last}


def summarize_csv(stream: BinaryIO, time_column: str | None, path: Path | None) -> dict[str, Any]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError("CSV payload is empty (no header line)") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise FormatError(f"CSV payload is malformed: {exc}") from None
    index = header.index(time_column) if time_column in header else None
    rows = 0
    first = last = None
    try:
        for record in reader:
            if len(record) != len(header):
                raise FormatError(
                    f"CSV record {rows + 1} has {len(record)} fields, the header {len(header)}"
                )
            rows += 1
            if index is not None:
                last = record[index]
                if first is None:
                    first = last
    except (csv.Error, UnicodeDecodeError) as exc:
        raise FormatError(f"CSV payload is malformed near record {rows + 1}: {exc}") from None
    text.detach()
    return _summary(rows, first, last)


def _summarize_objects(lines: Any, time_column: str | None) -> dict[str, Any]:
    rows = 0
    first = last = None
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"JSON element on line {number} is malformed: {exc}") from None
        rows += 1
        if time_column is not None:
            last = item.get(time_column)
            if first is None:
                first = last
    return _summary(rows, first, last)


def summarize_jsonl(stream: BinaryIO, time_column: str | None, path: Path | None) -> dict[str, Any]:
    text = io.TextIOWrapper(stream, encoding="utf-8")
    result = _summarize_objects((line for line in text if line.strip()), time_column)
    text.detach()
    return result


def summarize_json(stream: BinaryIO, time_column: str | None, path: Path | None) -> dict[str, Any]:
    """Our JSON layout: ``[``, one element per line (comma-terminated but the last), ``]``."""
    text = io.TextIOWrapper(stream, encoding="utf-8")
    opening = text.readline().strip()
    if opening not in ("[", "[]"):
        raise FormatError("JSON payload does not start with an array")

    def elements() -> Any:
        closed = opening == "[]"
        for line in text:
            stripped = line.strip()
            if not stripped:
                continue
            if closed:
                raise FormatError("data after the end of the JSON array")
            if stripped == "]":
                closed = True
                continue
            yield stripped.removesuffix(",")
        if not closed:
            raise FormatError("the JSON array is not closed (file cut off?)")

    result = _summarize_objects(elements(), time_column)
    text.detach()
    return result


def summarize_parquet(
    stream: BinaryIO, time_column: str | None, path: Path | None
) -> dict[str, Any]:
    if path is None:
        raise FormatError("a Parquet payload can only be read back from a plain file")
    try:
        parquet = pq.ParquetFile(path)
        rows = parquet.metadata.num_rows
        first = last = None
        if time_column is not None and rows:
            head = parquet.read_row_group(0, columns=[time_column]).column(0)
            tail = parquet.read_row_group(parquet.num_row_groups - 1, columns=[time_column]).column(
                0
            )
            first = render_time(head.chunk(0))[0].as_py()
            last_chunk = tail.chunk(tail.num_chunks - 1)
            last = render_time(last_chunk)[-1].as_py()
    except (OSError, ValueError) as exc:
        raise FormatError(f"Parquet file cannot be read: {exc}") from None
    return _summary(rows, first, last)
