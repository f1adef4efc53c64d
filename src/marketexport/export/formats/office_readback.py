"""Reading xlsx and XML exports back for ``verify``: rows and first/last time, streamed.

Both parse with lxml's ``iterparse`` and drop each row once counted, so memory stays flat
however large the file.
"""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from lxml import etree

from ...errors import FormatError
from .xlsx_cells import TIME_STYLE

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_EXCEL_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)
_XSTRING = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _summary(rows: int, first: Any, last: Any) -> dict[str, Any]:
    return {"rows": rows, "first_time": first, "last_time": last}


def _drop(element: Any) -> None:
    """Free a parsed row and the siblings before it."""
    element.clear()
    while element.getprevious() is not None:
        del element.getparent()[0]


def _sheet_parts(archive: zipfile.ZipFile) -> list[str]:
    """The worksheet parts in the workbook's sheet order."""
    workbook = etree.fromstring(archive.read("xl/workbook.xml"))
    links = etree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {
        link.get("Id"): link.get("Target") for link in links.iter(f"{_PACKAGE_REL}Relationship")
    }
    parts = []
    for sheet in workbook.iter(f"{_MAIN}sheet"):
        target = targets[sheet.get(f"{_REL}id")]
        parts.append(
            target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        )
    return parts


def _cell_time(cell: Any) -> str | None:
    """The ISO text of a time cell: a date-time serial (ms) or ISO text as written."""
    if cell is None:
        return None
    if cell.get("t") == "inlineStr":
        text = "".join(cell.itertext())
        return _XSTRING.sub(lambda match: chr(int(match.group(1), 16)), text)
    value: str | None = cell.findtext(f"{_MAIN}v")
    if value is None or cell.get("s") != str(TIME_STYLE):
        return value
    epoch_ms = round((float(value) - 25569) * 86_400_000)
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def _time_index(header: Any, time_column: str | None) -> int | None:
    if time_column is None:
        return None
    names = ["".join(cell.itertext()) for cell in header]
    wanted = f"{time_column} (UTC)"
    return names.index(wanted) if wanted in names else None


def summarize_workbook(path: Path | None, time_column: str | None) -> dict[str, Any]:
    """Data rows (header rows left out) and first/last time of one of our workbooks."""
    if path is None:
        raise FormatError("an xlsx payload can only be read back from a plain file")
    rows = 0
    first = last = None
    try:
        with zipfile.ZipFile(path) as archive:
            for part in _sheet_parts(archive):
                with archive.open(part) as handle:
                    count, head, tail = _sheet_rows(handle, time_column)
                rows += count
                if count:
                    first = head if first is None else first
                    last = tail
    except (zipfile.BadZipFile, KeyError, OSError, etree.XMLSyntaxError, ValueError) as exc:
        raise FormatError(f"xlsx workbook cannot be read: {exc}") from None
    return _summary(rows, first, last)


def _sheet_rows(handle: IO[bytes], time_column: str | None) -> tuple[int, Any, Any]:
    """Data rows of one sheet and the time of its first and last; only those two convert."""
    rows = -1  # the header row is not data
    index = None
    first = previous = None
    for _, row in etree.iterparse(handle, tag=f"{_MAIN}row"):
        if previous is not None:
            _drop(previous)
        rows += 1
        if rows == 0:
            index = _time_index(row, time_column)
        elif rows == 1 and index is not None:
            first = _cell_time(row[index] if len(row) > index else None)
        previous = row
    last = None
    if rows > 0 and index is not None and previous is not None:
        last = _cell_time(previous[index] if len(previous) > index else None)
    return max(rows, 0), first, last


def summarize_xml_rows(stream: BinaryIO, time_column: str | None) -> dict[str, Any]:
    """Row elements and first/last time of one of our XML exports."""
    rows = 0
    first = last = None
    try:
        for _, row in etree.iterparse(stream, tag="row"):
            rows += 1
            if time_column is not None:
                last = row.findtext(time_column)
                if rows == 1:
                    first = last
            _drop(row)
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"XML payload is malformed: {exc}") from None
    return _summary(rows, first, last)
