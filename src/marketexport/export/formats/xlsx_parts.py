"""The fixed parts of an xlsx package (ECMA-376): content types, relationships, workbook,
styles, and the XML around each sheet's rows."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .xlsx_cells import TIME_FORMAT

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_MAX_SHEET_NAME = 31  # Excel's limit


@dataclass(frozen=True)
class SheetInfo:
    """A finished sheet: its name, its data rows and where they sit in the export."""

    name: str
    rows: int
    first_row: int  # 1-based number of its first data row in the whole export
    columns: int

    @property
    def last_row(self) -> int:
        return self.first_row + self.rows - 1

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "rows": self.rows, "first_row": self.first_row}


def column_letters(number: int) -> str:
    """Excel's column name of a 1-based column number (1 -> A, 27 -> AA)."""
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def sheet_name(dataset: str, first_row: int, rows: int, index: int) -> str:
    """A sheet name that says what it holds: the dataset and its rows in the export."""
    if rows == 0:
        return f"{dataset} (no rows)"[:_MAX_SHEET_NAME]
    name = f"{dataset} {first_row}-{first_row + rows - 1}"
    return name if len(name) <= _MAX_SHEET_NAME else f"{dataset[:20]} {index}"


def content_types(sheets: int) -> bytes:
    overrides = [
        ("/xl/workbook.xml", f"{_TYPE}.sheet.main+xml"),
        ("/xl/styles.xml", f"{_TYPE}.styles+xml"),
    ]
    overrides += [
        (f"/xl/worksheets/sheet{i}.xml", f"{_TYPE}.worksheet+xml") for i in range(1, sheets + 1)
    ]
    body = "".join(
        f'<Override PartName="{part}" ContentType="{kind}"/>' for part, kind in overrides
    )
    return (
        _DECLARATION
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        + '<Default Extension="rels" '
        + 'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        + '<Default Extension="xml" ContentType="application/xml"/>'
        + body
        + "</Types>"
    ).encode()


def root_relationships() -> bytes:
    return (
        _DECLARATION
        + f'<Relationships xmlns="{PACKAGE_REL_NS}">'
        + f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
        + "</Relationships>"
    ).encode()


def workbook_relationships(sheets: int) -> bytes:
    links = [
        f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, sheets + 1)
    ]
    links.append(f'<Relationship Id="rId{sheets + 1}" Type="{REL_NS}/styles" Target="styles.xml"/>')
    return (
        _DECLARATION
        + f'<Relationships xmlns="{PACKAGE_REL_NS}">'
        + "".join(links)
        + "</Relationships>"
    ).encode()


def workbook(sheets: list[SheetInfo]) -> bytes:
    entries = []
    filters = []
    for i, sheet in enumerate(sheets):
        entries.append(f'<sheet name={quoteattr(sheet.name)} sheetId="{i + 1}" r:id="rId{i + 1}"/>')
        # Excel keeps an autofilter's range in this hidden name as well as in the sheet.
        quoted = "'" + sheet.name.replace("'", "''") + "'"
        last = f"${column_letters(sheet.columns)}${sheet.rows + 1}"
        filters.append(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"{escape(quoted)}!$A$1:{last}</definedName>"
        )
    return (
        _DECLARATION
        + f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        + '<workbookPr/><bookViews><workbookView activeTab="0"/></bookViews>'
        + "<sheets>"
        + "".join(entries)
        + "</sheets><definedNames>"
        + "".join(filters)
        + "</definedNames></workbook>"
    ).encode()


def styles() -> bytes:
    font = '<sz val="11"/><name val="Calibri"/><family val="2"/>'
    xf = 'fontId="{font}" fillId="0" borderId="0" xfId="0"'
    return (
        _DECLARATION
        + f'<styleSheet xmlns="{MAIN_NS}">'
        + f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{TIME_FORMAT}"/></numFmts>'
        + f'<fonts count="2"><font>{font}</font><font><b/>{font}</font></fonts>'
        + '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        + '<fill><patternFill patternType="gray125"/></fill></fills>'
        + '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
        + "</borders>"
        + '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        + "</cellStyleXfs>"
        + '<cellXfs count="3">'
        + f'<xf numFmtId="0" {xf.format(font=0)}/>'
        + f'<xf numFmtId="164" {xf.format(font=0)} applyNumberFormat="1"/>'
        + f'<xf numFmtId="0" {xf.format(font=1)} applyFont="1"/>'
        + "</cellXfs>"
        + '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        + "</styleSheet>"
    ).encode()


def sheet_start(widths: list[float], header_cells: str, selected: bool) -> bytes:
    """Everything before the first data row: frozen header pane, widths, the header row."""
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{width:.2f}" customWidth="1"/>'
        for i, width in enumerate(widths, start=1)
    )
    tab = ' tabSelected="1"' if selected else ""
    return (
        _DECLARATION
        + f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        + f'<sheetViews><sheetView workbookViewId="0"{tab}>'
        + '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        + '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
        + "</sheetView></sheetViews>"
        + '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{cols}</cols>" if cols else "")
        + "<sheetData>"
        + f'<row r="1">{header_cells}</row>'
    ).encode()


def sheet_end(columns: int, rows: int) -> bytes:
    """After the last data row: the autofilter over header and rows, page margins."""
    last = f"{column_letters(max(columns, 1))}{rows + 1}"
    return (
        "</sheetData>"
        + f'<autoFilter ref="A1:{last}"/>'
        + '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
        + 'footer="0.3"/></worksheet>'
    ).encode()
