"""xlsx at Excel's row limit, and opened by LibreOffice: the slow checks of the format."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from lxml import etree

from marketexport.datasets import ORDERS
from marketexport.export.formats.xlsx import XlsxWriter
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
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
)

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
LIMIT = 1_048_576  # rows of a sheet, the header included
MOST_ROWS = LIMIT + 1


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store of 1,048,577 one-minute candles whose ``trades`` count is the row index."""
    path = tmp_path_factory.mktemp("limits") / "store.duckdb"
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO ohlcv (exchange, symbol, timeframe, price_type, time, open, high, low, "
        "close, trades) SELECT 'binance', 'BTC/USDT', '1m', 'trade', "
        f"make_timestamp_ns(({T0_MS} + i * 60000) * 1000000), 1, 2, 0.5, 1.5, i "
        f"FROM range({MOST_ROWS}) t(i)"
    ).fetchall()
    con.close()
    yield path


def sheets_of(path: Path) -> list[tuple[str, list[int], list[str], list[int], list[str]]]:
    """Per sheet, read by lxml (whole tree, at C speed; openpyxl needs minutes for a
    million rows): name, row numbers, header, trades values, time serials."""
    ns = {"m": MAIN}
    out = []
    with zipfile.ZipFile(path) as archive:
        workbook = etree.fromstring(archive.read("xl/workbook.xml"))
        names = [sheet.get("name") for sheet in workbook.iterfind(".//m:sheet", ns)]
        for index, name in enumerate(names, start=1):
            data = archive.read(f"xl/worksheets/sheet{index}.xml")
            tree = etree.fromstring(data, etree.XMLParser(huge_tree=True))
            numbers = [int(r) for r in tree.xpath("m:sheetData/m:row/@r", namespaces=ns)]
            header = tree.xpath("m:sheetData/m:row[1]/m:c/m:is/m:t/text()", namespaces=ns)
            trades = tree.xpath("m:sheetData/m:row/m:c[2]/m:v/text()", namespaces=ns)
            times = tree.xpath("m:sheetData/m:row/m:c[1]/m:v/text()", namespaces=ns)
            out.append((name, numbers, header, [int(value) for value in trades], times))
            del tree, data
    return out


@pytest.mark.slow
@pytest.mark.parametrize("rows", [LIMIT - 1, LIMIT, LIMIT + 1])
def test_every_row_arrives_at_the_sheet_limit(big_store: Path, tmp_path: Path, rows: int) -> None:
    opened = DuckDBStore(big_store, read_only=True)
    request = build_request(
        dataset="ohlcv", format="xlsx", columns="time,trades", end=str(T0_MS + rows * 60_000)
    )
    try:
        result = run_export(request, opened, output_dir=tmp_path)
    finally:
        opened.close()

    sheets = sheets_of(result.path)

    counts = [len(trades) for _, _, _, trades, _ in sheets]
    assert counts == ([LIMIT - 1] if rows < LIMIT else [LIMIT - 1, rows - LIMIT + 1])
    assert [trade for _, _, _, trades, _ in sheets for trade in trades] == list(range(rows))
    for _, numbers, header, trades, times in sheets:
        assert header == ["time (UTC)", "trades"]
        assert numbers == list(range(1, len(trades) + 2))
        assert len(times) == len(trades)
    names = [name for name, *_ in sheets]
    assert names == [f"ohlcv 1-{LIMIT - 1}"] + ([f"ohlcv {LIMIT}-{rows}"] if rows >= LIMIT else [])
    # Excel's day count since 1899-12-30, back to epoch milliseconds.
    last_ms = round((float(sheets[-1][4][-1]) - 25_569) * 86_400_000)
    assert last_ms == T0_MS + (rows - 1) * 60_000
    assert result.manifest.rows == rows == sum(counts)
    assert iso_ns(result.manifest.last_time or "") == last_ms * 1_000_000
    assert verify_export(result.path).ok


LIBREOFFICE_CSV = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"


def libreoffice_sheets(workbook: Path, work: Path) -> dict[str, list[list[str]]]:
    """Every sheet as LibreOffice's headless CSV export sees it (UTF-8, values as shown)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip(
            "LibreOffice is not installed here (apt-get install libreoffice-calc-nogui; "
            ".ci/run installs it)"
        )
    out = work / "converted"
    completed = subprocess.run(
        [soffice, f"-env:UserInstallation=file://{work}/profile", "--headless",
         "--convert-to", LIBREOFFICE_CSV, "--outdir", str(out), str(workbook)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "Error" not in completed.stdout + completed.stderr
    sheets = {}
    for path in sorted(out.glob("*.csv")):
        text = path.read_bytes().decode("utf-8")
        sheet = path.stem.removeprefix(workbook.stem + "-")
        sheets[sheet] = list(csv.reader(io.StringIO(text, newline="")))
    return sheets


def check_libreoffice_value(kind: str, text: str, source: object) -> None:
    if source is None:
        assert text == ""
    elif kind in ("text", "id"):
        assert text == source
    elif kind == "decimal" or kind == "integer":
        assert isinstance(source, Decimal | int)
        assert Decimal(text) == Decimal(source)
        if significant_digits(Decimal(source)) > 15:
            assert text == format(Decimal(source).normalize(), "f")  # the exact digits
    elif kind == "boolean":
        assert text == ("TRUE" if source else "FALSE")
    else:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
        assert epoch_ns(moment) == source


@pytest.mark.slow
def test_libreoffice_converts_the_workbook_with_the_same_values(
    store: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(XlsxWriter, "rows_per_sheet", 8)  # three sheets of 7, 7 and 4 rows
    texts = ["=1+1", "+2", "-3", "@cmd", "a\x01b", "cr\rhere", "new\nline", "tab\tx",
             "literal _x0041_", "  padded  ", "ÄÖü €", "<&>\"'", "x" * 32_767, ""]  # fmt: skip
    rows = sample_rows(ORDERS, len(texts) + 4)
    for row, text in zip(rows, texts, strict=False):
        row["client_order_id"] = text
    filled_store(store, ORDERS, rows)

    result = export(store, tmp_path, "orders", "xlsx")
    sheets = libreoffice_sheets(result.path, tmp_path)

    names = [sheet["name"] for sheet in result.manifest.notes["sheets"]]
    assert sorted(sheets) == sorted(names) and len(names) == 3
    header = [f"{c.name} (UTC)" if c.kind == "time" else c.name for c in ORDERS.columns]
    converted = []
    for name in names:
        table = sheets[name]
        assert table[0] == header
        converted.extend(table[1:])
    source = store_rows(store, ORDERS)
    assert len(converted) == len(source) == 18
    for row, expected in zip(converted, source, strict=True):
        for column, text in zip(ORDERS.columns, row, strict=True):
            check_libreoffice_value(column.kind, text, expected[column.name])
