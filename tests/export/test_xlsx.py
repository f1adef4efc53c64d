"""The xlsx format: read back by openpyxl and pandas, values exact, limits enforced."""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from marketexport.datasets import DATASETS, FILLS, OHLCV, ORDERS, TRADES, Dataset
from marketexport.errors import FormatError, RequestError
from marketexport.export.formats.xlsx import XlsxWriter
from marketexport.export.verify import verify_export
from marketexport.store.duckdb import DuckDBStore
from tests.export.office_samples import (
    T0_MS,
    epoch_ns,
    export,
    filled_store,
    iso_ns,
    sample_rows,
    significant_digits,
    store_rows,
    unescape_xstring,
)


def read_workbook(path: Path) -> list[tuple[str, tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(sheet name, header, data rows) of every sheet, read by openpyxl."""
    book = openpyxl.load_workbook(path, read_only=True)
    sheets = []
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        sheets.append((sheet.title, rows[0], rows[1:]))
    book.close()
    return sheets


def data_rows(path: Path) -> list[tuple[Any, ...]]:
    return [row for _, _, rows in read_workbook(path) for row in rows]


def check_cell(kind: str, found: Any, source: Any) -> None:
    """One cell read back against the store's value, by the column's kind."""
    if source is None:
        assert found is None
    elif kind == "text":
        assert isinstance(found, str) and unescape_xstring(found) == source
    elif kind == "id":
        assert found == source  # the exact digits, as text
    elif kind in ("decimal", "integer"):
        expected = Decimal(source)
        if significant_digits(expected) > 15:
            assert isinstance(found, str) and Decimal(found) == expected
        else:
            assert isinstance(found, int | float) and Decimal(repr(found)) == expected
    elif kind == "boolean":
        assert found is source
    elif isinstance(found, str):
        assert iso_ns(found) == source  # finer than ms: exact ISO text (noted in the manifest)
    else:
        assert isinstance(found, datetime) and epoch_ns(found) == source


def check_rows(spec: Dataset, found: list[tuple[Any, ...]], source: list[dict[str, Any]]) -> None:
    assert len(found) == len(source)
    for row, expected in zip(found, source, strict=True):
        for column, value in zip(spec.columns, row, strict=True):
            check_cell(column.kind, value, expected[column.name])


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_dataset_reads_back_exactly(store: DuckDBStore, tmp_path: Path, dataset: str) -> None:
    spec = DATASETS[dataset]
    filled_store(store, spec, sample_rows(spec, 23))

    result = export(store, tmp_path, dataset, "xlsx")
    sheets = read_workbook(result.path)
    frames = pd.read_excel(result.path, sheet_name=None, engine="openpyxl", dtype=object)

    source = store_rows(store, spec)
    assert [name for name, _, _ in sheets] == [f"{dataset} 1-23"] == list(frames)
    header = [f"{c.name} (UTC)" if c.kind == "time" else c.name for c in spec.columns]
    assert list(sheets[0][1]) == header == list(frames[f"{dataset} 1-23"].columns)
    check_rows(spec, sheets[0][2], source)
    pandas_rows = [
        tuple(None if pd.isna(value) else value for value in row)
        for row in frames[f"{dataset} 1-23"].itertuples(index=False)
    ]
    check_rows(spec, pandas_rows, source)
    assert result.manifest.rows == 23
    assert verify_export(result.path).ok


def test_long_numbers_and_ids_are_text_and_noted(store: DuckDBStore, tmp_path: Path) -> None:
    rows = sample_rows(TRADES, 8)
    rows[0]["price"] = "75036192.45844001"  # 16 significant digits
    rows[1]["price"] = "12345.6789012345"  # 15: a number
    rows[2]["price"] = "0.123456789012345678"  # 18 significant digits
    rows[3]["first_trade_id"] = 9_007_199_254_740_993
    rows[4]["trade_id"] = "9223372036854775807"
    filled_store(store, TRADES, rows)

    result = export(store, tmp_path, "trades", "xlsx")
    found = data_rows(result.path)
    notes = result.manifest.notes["written_as_text"]

    by_id = {row[3]: row for row in found}
    price = TRADES.column_names.index("price")
    assert by_id[rows[0]["trade_id"]][price] == "75036192.45844001"
    assert by_id[rows[1]["trade_id"]][price] == 12345.6789012345
    assert by_id["9223372036854775807"][3] == "9223372036854775807"
    first_id = TRADES.column_names.index("first_trade_id")
    assert by_id[rows[3]["trade_id"]][first_id] == "9007199254740993"
    assert notes["trade_id"] == {"cells": 8, "reason": "identifier: exact digits as text"}
    assert notes["price"]["cells"] == sum(
        1 for row in store_rows(store, TRADES) if significant_digits(row["price"]) > 15
    )
    assert "more than 15 significant digits" in notes["price"]["reason"]


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_formula_like_text_stays_text(store: DuckDBStore, tmp_path: Path, start: str) -> None:
    rows = sample_rows(ORDERS, 3)
    values = [f"{start}1+1", f'{start}HYPERLINK("http://x")', f"{start}cmd|' /C calc'!A0"]
    for row, value in zip(rows, values, strict=True):
        row["client_order_id"] = value
        row["type"] = value
    filled_store(store, ORDERS, rows)

    result = export(store, tmp_path, "orders", "xlsx")
    book = openpyxl.load_workbook(result.path)
    sheet = book.worksheets[0]
    with zipfile.ZipFile(result.path) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml")

    column = ORDERS.column_names.index("client_order_id") + 1
    kind_column = ORDERS.column_names.index("type") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, 5)]
    assert sorted(cell.value for cell in cells) == sorted(values)
    assert all(cell.data_type == "s" for cell in cells)
    kinds = [sheet.cell(row=r, column=kind_column).value for r in range(2, 5)]
    assert sorted(kinds) == sorted(values)
    assert b"<f>" not in sheet_xml and b"<f " not in sheet_xml


def test_control_characters_are_escaped_and_noted(store: DuckDBStore, tmp_path: Path) -> None:
    texts = [
        "a\x01b",
        "tab\tnew\nline",
        "cr\rhere",
        "\x0b\x0c\x1f\x7f",
        "literal _x0041_ stays",
        "not\ufffeallowed",
        "  padded  ",
        "<&>\"'",
    ]
    rows = sample_rows(FILLS, len(texts))
    for row, text in zip(rows, texts, strict=True):
        row["fee_currency"] = text
    filled_store(store, FILLS, rows)

    result = export(store, tmp_path, "fills", "xlsx")
    found = data_rows(result.path)

    column = FILLS.column_names.index("fee_currency")
    assert sorted(unescape_xstring(row[column]) for row in found) == sorted(texts)
    escaped = [text for text in texts if re.search(r"[\x00-\x08\x0b-\x1f\ufffe]|_x0041_", text)]
    notes = result.manifest.notes["escaped_characters"]
    assert notes["cells"] == {"fee_currency": len(escaped)}
    assert "_xHHHH_" in notes["form"]
    raw = {row[column] for row in found}
    assert "literal _x005F_x0041_ stays" in raw and "a_x0001_b" in raw
    assert "  padded  " in raw and "tab\tnew\nline" in raw


@pytest.mark.parametrize(
    ("text", "fits"),
    [("x" * 32_767, True), ("x" * 32_768, False), ("\U0001f600" * 16_384, False)],
    ids=["32767", "32768", "emoji-32768-utf16"],
)
def test_text_over_32767_characters_is_refused(
    store: DuckDBStore, tmp_path: Path, text: str, fits: bool
) -> None:
    rows = sample_rows(ORDERS, 12)
    rows[9]["client_order_id"] = text
    filled_store(store, ORDERS, rows)
    position = [row["order_id"] for row in store_rows(store, ORDERS)].index(rows[9]["order_id"])

    if fits:
        result = export(store, tmp_path, "orders", "xlsx")
        column = ORDERS.column_names.index("client_order_id")
        assert data_rows(result.path)[position][column] == text
        return
    with pytest.raises(FormatError) as caught:
        export(store, tmp_path, "orders", "xlsx")

    assert f"row {position + 1}," in str(caught.value)
    assert "'client_order_id'" in str(caught.value) and "32,768" in str(caught.value)
    assert caught.value.row == position + 1  # type: ignore[attr-defined]
    assert list((tmp_path / "out").iterdir()) == []


def test_microsecond_times_are_exact_iso_text(store: DuckDBStore, tmp_path: Path) -> None:
    rows = sample_rows(TRADES, 4)
    rows[2]["time"] = (T0_MS * 1000 + 123_456) * 1000
    filled_store(store, TRADES, rows)

    result = export(store, tmp_path, "trades", "xlsx")
    found = data_rows(result.path)

    assert result.manifest.time_unit == "us"
    times = [row[2] for row in found]
    assert all(isinstance(value, str) and value.endswith("Z") for value in times)
    assert "2023-11-14T22:13:20.123456Z" in times
    assert result.manifest.notes["written_as_text"]["time"]["cells"] == 4
    assert verify_export(result.path).ok


@pytest.mark.parametrize("rows", [1, 3, 4, 5, 8, 9, 13])
def test_sheets_continue_with_their_own_header(
    store: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    monkeypatch.setattr(XlsxWriter, "rows_per_sheet", 5)  # 4 data rows under the header
    filled_store(store, OHLCV, sample_rows(OHLCV, rows))

    result = export(store, tmp_path, "ohlcv", "xlsx", batch_rows=3)
    sheets = read_workbook(result.path)

    expected_sheets = (rows + 3) // 4
    assert len(sheets) == expected_sheets
    header = sheets[0][1]
    for index, (name, first, body) in enumerate(sheets):
        start = index * 4 + 1
        assert name == f"ohlcv {start}-{start + len(body) - 1}"
        assert first == header
        assert len(body) == (4 if index < expected_sheets - 1 else rows - 4 * index)
    check_rows(OHLCV, [row for _, _, body in sheets for row in body], store_rows(store, OHLCV))
    in_sheets = sum(sheet["rows"] for sheet in result.manifest.notes["sheets"])
    assert result.manifest.rows == rows == in_sheets
    assert verify_export(result.path).ok


def test_sheets_also_split_before_the_zip_entry_limit(
    store: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(XlsxWriter, "sheet_bytes", 4_000)
    filled_store(store, OHLCV, sample_rows(OHLCV, 40))

    result = export(store, tmp_path, "ohlcv", "xlsx", batch_rows=16)
    sheets = read_workbook(result.path)

    assert len(sheets) > 2
    check_rows(OHLCV, [row for _, _, body in sheets for row in body], store_rows(store, OHLCV))
    assert verify_export(result.path).ok


def test_workbook_opens_with_frozen_header_filter_and_fitted_widths(
    store: DuckDBStore, tmp_path: Path
) -> None:
    filled_store(store, ORDERS, sample_rows(ORDERS, 6))

    result = export(store, tmp_path, "orders", "xlsx")
    sheet = openpyxl.load_workbook(result.path).worksheets[0]

    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(ORDERS.columns))}7"
    for index, column in enumerate(ORDERS.columns, start=1):
        letter = openpyxl.utils.get_column_letter(index)
        width = sheet.column_dimensions[letter].width
        assert width >= len(column.name) + 2
        longest = max(len(str(cell.value)) for cell in sheet[letter] if cell.value is not None)
        if column.kind in ("text", "id"):
            assert width >= longest
    assert sheet.cell(row=1, column=1).font.b
    assert sheet.cell(row=2, column=ORDERS.column_names.index("time") + 1).number_format == (
        "yyyy-mm-dd hh:mm:ss.000"
    )


def test_empty_export_is_one_sheet_with_its_header(store: DuckDBStore, tmp_path: Path) -> None:
    result = export(store, tmp_path, "trades", "xlsx")
    sheets = read_workbook(result.path)

    assert [(name, len(body)) for name, _, body in sheets] == [("trades (no rows)", 0)]
    assert sheets[0][1][2] == "time (UTC)"
    assert result.manifest.rows == 0
    assert verify_export(result.path).ok


def test_outer_compression_is_refused_and_leaves_nothing(
    store: DuckDBStore, tmp_path: Path
) -> None:
    filled_store(store, OHLCV, sample_rows(OHLCV, 2))

    with pytest.raises(RequestError) as caught:
        export(store, tmp_path, "ohlcv", "xlsx", compression="gzip")

    assert "'gzip'" in str(caught.value) and "expected: none" in str(caught.value)
    assert not (tmp_path / "out").exists()  # refused by build_request, before any output


def test_zip_archive_is_valid_for_zip_tools(store: DuckDBStore, tmp_path: Path) -> None:
    filled_store(store, OHLCV, sample_rows(OHLCV, 30))

    result = export(store, tmp_path, "ohlcv", "xlsx")
    with zipfile.ZipFile(result.path) as archive:
        broken = archive.testzip()
        names = archive.namelist()

    assert broken is None
    assert sorted(names) == sorted(
        [
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
        ]
    )
