"""xlsx and XML export speed and memory against the usual writers, in one run.

Builds a DuckDB store of N synthetic one-minute candles (default 1,000,000) and times:

- xlsx: marketexport (the real pipeline) vs xlsxwriter in constant-memory mode vs pandas
  ``DataFrame.to_excel`` (openpyxl);
- XML: marketexport vs lxml's incremental writer (``etree.xmlfile``), same layout.

Each measurement runs in its own subprocess, so its peak RSS is its own. The baselines read
the same store in the same order; pandas holds everything in memory, so the baselines run
on at most --baseline-rows rows (their figure is rows/s all the same). Every marketexport
file is then read back (lxml, streaming) and compared value by value with the store.

    python benchmarks/office_formats.py                    # 1,000,000 rows, table to docs
    python benchmarks/office_formats.py --rows 200000 --no-docs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketexport.config import Settings

# The product's own defaults (batch size, DuckDB memory limit) with every core for the
# export, as DuckDB's COPY has: what `MARKETEXPORT_CPU_FRACTION=1 marketexport export` runs.
DEFAULTS = Settings(cpu_fraction=1.0)

# The candle store and the peak-RSS reading are export_speed's, so the figures compare.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_speed import _peak_rss_mb, build_store  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COLUMNS = [
    "exchange", "symbol", "timeframe", "price_type", "time", "open", "high", "low", "close",
    "volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume",
]  # fmt: skip
ORDER = "ORDER BY time, exchange, symbol, timeframe, price_type"
CASES = [
    ("xlsx", "marketexport"),
    ("xlsx", "xlsxwriter"),
    ("xlsx", "pandas"),
    ("xml", "marketexport"),
    ("xml", "lxml"),
]


def _batches(store: Path, limit: int) -> Any:
    """The store's candles in export order, as Arrow batches (what the baselines write)."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True, config={"memory_limit": "256MB"})
    query = f"SELECT {', '.join(COLUMNS)} FROM ohlcv {ORDER} LIMIT {limit}"
    return con, con.sql(query).to_arrow_reader(32_768)


def case_marketexport(store: Path, out: Path, fmt: str, limit: int) -> dict[str, Any]:
    from marketexport.export.pipeline import run_export
    from marketexport.request import build_request
    from marketexport.store.duckdb import DuckDBStore

    opened = DuckDBStore(
        store,
        read_only=True,
        threads=DEFAULTS.cpu_threads,
        memory_limit_mb=DEFAULTS.store_memory_mb,
    )
    request = build_request(dataset="ohlcv", format=fmt)
    started = time.perf_counter()
    result = run_export(
        request,
        opened,
        output_dir=out,
        threads=DEFAULTS.cpu_threads,
        batch_rows=DEFAULTS.batch_rows,
    )
    elapsed = time.perf_counter() - started
    opened.close()
    return {"seconds": elapsed, "rows": result.manifest.rows, "path": str(result.path)}


def case_xlsxwriter(store: Path, out: Path, fmt: str, limit: int) -> dict[str, Any]:
    import xlsxwriter

    started = time.perf_counter()
    con, reader = _batches(store, limit)
    book = xlsxwriter.Workbook(str(out / "xlsxwriter.xlsx"), {"constant_memory": True})
    sheet = book.add_worksheet("ohlcv")
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"})
    sheet.write_row(0, 0, COLUMNS)
    rows = 0
    for batch in reader:
        for values in zip(*(column.to_pylist() for column in batch.columns), strict=True):
            rows += 1
            for index, value in enumerate(values):
                if index == 4:
                    sheet.write_datetime(rows, index, value, stamp)
                elif isinstance(value, Decimal):
                    sheet.write_number(rows, index, float(value))
                else:
                    sheet.write(rows, index, value)
    book.close()
    con.close()
    return {"seconds": time.perf_counter() - started, "rows": rows}


def case_pandas(store: Path, out: Path, fmt: str, limit: int) -> dict[str, Any]:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(store), read_only=True)
    frame = con.sql(f"SELECT {', '.join(COLUMNS)} FROM ohlcv {ORDER} LIMIT {limit}").df()
    frame.to_excel(out / "pandas.xlsx", index=False, engine="openpyxl")
    con.close()
    return {"seconds": time.perf_counter() - started, "rows": len(frame)}


def case_lxml(store: Path, out: Path, fmt: str, limit: int) -> dict[str, Any]:
    from lxml import etree

    started = time.perf_counter()
    con, reader = _batches(store, limit)
    rows = 0
    with etree.xmlfile(str(out / "lxml.xml"), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("ohlcv"):
            for batch in reader:
                for values in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                    rows += 1
                    row = etree.Element("row")
                    for name, value in zip(COLUMNS, values, strict=True):
                        if value is not None:
                            child = etree.SubElement(row, name)
                            child.text = value.isoformat() + "Z" if name == "time" else str(value)
                    xf.write(row)
    con.close()
    return {"seconds": time.perf_counter() - started, "rows": rows}


RUNNERS = {
    "marketexport": case_marketexport,
    "xlsxwriter": case_xlsxwriter,
    "pandas": case_pandas,
    "lxml": case_lxml,
}


def _store_rows(store: Path) -> Any:
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    cursor = con.execute(
        f"SELECT {', '.join(COLUMNS[:4])}, epoch_ns(time) // 1000000, {', '.join(COLUMNS[5:])} "
        f"FROM ohlcv {ORDER}"
    )
    while chunk := cursor.fetchmany(10_000):
        yield from chunk
    con.close()


def _same(found: list[Any], expected: tuple[Any, ...]) -> bool:
    for value, want in zip(found, expected, strict=True):
        if isinstance(want, Decimal):
            if Decimal(value) != want:
                return False
        elif isinstance(want, int) and not isinstance(want, bool):
            if int(value) != want:
                return False
        elif value != want:
            return False
    return True


def check_xlsx(path: Path, store: Path) -> str:
    """Every cell read back (lxml, streaming) against the store; times from serials."""
    from lxml import etree

    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    expected = _store_rows(store)
    differing = rows = 0
    with zipfile.ZipFile(path) as archive:
        sheets = sorted(n for n in archive.namelist() if n.startswith("xl/worksheets/sheet"))
        for part in sorted(sheets, key=lambda name: int(re.sub(r"\D", "", name))):
            with archive.open(part) as handle:
                for number, (_, row) in enumerate(etree.iterparse(handle, tag=f"{main}row")):
                    if number:
                        cells = ["".join(cell.itertext()) for cell in row]
                        cells[4] = round((float(cells[4]) - 25569) * 86_400_000)
                        rows += 1
                        differing += not _same(cells, next(expected))
                    row.clear()
                    while row.getprevious() is not None:
                        del row.getparent()[0]
    missing = sum(1 for _ in expected)
    return _verdict(rows, differing, missing)


def check_xml(path: Path, store: Path) -> str:
    from lxml import etree

    from marketexport.timeparse import parse_instant

    expected = _store_rows(store)
    differing = rows = 0
    for _, row in etree.iterparse(str(path), tag="row"):
        values = [child.text or "" for child in row]
        values[4] = parse_instant(values[4], what="time") // 1_000_000
        rows += 1
        differing += not _same(values, next(expected))
        row.clear()
        while row.getprevious() is not None:
            del row.getparent()[0]
    missing = sum(1 for _ in expected)
    return _verdict(rows, differing, missing)


def _verdict(rows: int, differing: int, missing: int) -> str:
    if differing or missing:
        return f"{differing} of {rows} rows differ, {missing} missing"
    return "exact"


def run_child(args: list[str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(rows: int, work: Path, baseline_rows: int) -> list[dict[str, Any]]:
    store = work / f"office-{rows}.duckdb"
    if not store.exists():
        print(f"building a store of {rows:,} candles ...", file=sys.stderr)
        build_store(store, rows)
    table = []
    for fmt, writer in CASES:
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        limit = rows if writer == "marketexport" else min(rows, baseline_rows)
        load_before = os.getloadavg()[0]
        result = run_child(["--child", writer, str(store), str(out), fmt, str(limit)])
        result.update(format=fmt, writer=writer, load=max(load_before, os.getloadavg()[0]))
        result["rows_s"] = result["rows"] / result["seconds"]
        result["cpu_us_per_row"] = result["cpu_s"] / result["rows"] * 1e6
        if writer == "marketexport":
            result["exact"] = run_child(["--check", fmt, result["path"], str(store)])["exact"]
        print(json.dumps(result), file=sys.stderr)
        table.append(result)
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    ours = {r["format"]: r["rows_s"] for r in table if r["writer"] == "marketexport"}
    lines = [
        "| format | writer | rows | rows/s | marketexport × | CPU µs/row | peak RSS MB | "
        "load avg | exact |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in table:
        ratio = ours[r["format"]] / r["rows_s"]
        lines.append(
            f"| {r['format']} | {r['writer']} | {r['rows']:,} | {r['rows_s']:,.0f} | "
            f"{ratio:.1f} | {r['cpu_us_per_row']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['load']:.1f} | {r.get('exact', '-')} |"
        )
    return "\n".join(lines)


def write_docs(text: str, doc: Path) -> None:
    begin, end = "<!-- bench:office_formats -->", "<!-- /bench:office_formats -->"
    content = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{begin}\n{text}\n{end}"
    if begin in content:
        content = re.sub(re.escape(begin) + ".*?" + re.escape(end), block, content, flags=re.S)
    else:
        content += "\n" + block + "\n"
    doc.write_text(content, encoding="utf-8")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        writer, store, out, fmt, limit = sys.argv[2:]
        cpu_started = time.process_time()  # every thread of the process, imports excluded
        result = RUNNERS[writer](Path(store), Path(out), fmt, int(limit))
        cpu_s = time.process_time() - cpu_started
        print(json.dumps({**result, "cpu_s": cpu_s, "peak_rss_mb": _peak_rss_mb()}))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        fmt, path, store = sys.argv[2:]
        check = check_xlsx if fmt == "xlsx" else check_xml
        print(json.dumps({"exact": check(Path(path), Path(store))}))
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="marketexport-office-"))
    work.mkdir(parents=True, exist_ok=True)
    table = measure(args.rows, work, args.baseline_rows)
    text = markdown(table)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    if not args.no_docs:
        write_docs(text, REPO / "docs" / "formats.md")


if __name__ == "__main__":
    main()
