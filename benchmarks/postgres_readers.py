"""How to read PostgreSQL rows into Arrow batches: four ways, measured side by side.

Loads N candles (default 1,000,000) into a schema of its own, then reads the ordered
selection of every column into store-schema Arrow batches (decimal128(38, 22),
timestamp[ns]) in a fresh subprocess per way, reporting rows/s and peak RSS:

- ``adbc``: the store as built (ADBC's PostgreSQL driver: COPY ... (FORMAT binary) parsed
  in C++, decimals sent as text and parsed by Arrow);
- ``copy-binary``: psycopg 3 ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)``, rows parsed by
  psycopg's C loaders into Python tuples, then to Arrow;
- ``copy-csv``: psycopg 3 ``COPY ... (FORMAT csv)`` chunks fed to Arrow's streaming CSV
  reader;
- ``cursor``: a psycopg server-side cursor, ``fetchmany`` of 65,536 rows, then to Arrow;
- ``export-adbc`` and ``export-copy-csv``: the whole CSV export pipeline over the store's
  batch scan, and over the same store with ``copy-csv`` as its scan (same query, same
  conversion, same read-ahead threads), to compare the two inside a real export. (A CSV
  export normally takes the lines the server renders, see export_speed.py --store; both
  are held to the batch scan here.)

The psycopg ways need ``pip install "psycopg[binary]"`` (not a marketexport dependency).

    python benchmarks/postgres_readers.py --rows 1000000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import subprocess
import sys
import time
from typing import Any

from postgres_speed import DEFAULT_URL, QUIET, _peak_rss_mb, load_postgres

COLUMNS = [
    "exchange", "symbol", "timeframe", "price_type", "time", "open", "high", "low", "close",
    "volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume",
]  # fmt: skip
WAYS = ("adbc", "copy-binary", "copy-csv", "cursor", "export-adbc", "export-copy-csv")
BATCH_ROWS = 65_536


def _query(schema: str) -> str:
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    return f'SELECT {names} FROM "{schema}".ohlcv ORDER BY "time", exchange, symbol'


def _to_batch(rows: list[tuple[Any, ...]]) -> Any:
    import pyarrow as pa

    from marketexport.datasets import OHLCV

    columns = list(zip(*rows, strict=True))
    arrays = []
    for name, values in zip(COLUMNS, columns, strict=True):
        kind = OHLCV.column(name).arrow_type
        if name == "time":
            values = tuple(v.replace(tzinfo=None) for v in values)
        arrays.append(pa.array(values, kind))
    return pa.record_batch(arrays, names=COLUMNS)


def read_adbc(url: str, schema: str) -> int:
    from marketexport.config import Settings
    from marketexport.datasets import OHLCV
    from marketexport.store.postgres import PostgresStore

    store = PostgresStore(url, settings=Settings(postgres={"schema": schema}))
    reader = store.scan(OHLCV, [], COLUMNS, BATCH_ROWS)
    rows = sum(batch.num_rows for batch in reader)
    reader.close()
    store.close()
    return rows


def read_copy_binary(url: str, schema: str) -> int:
    import psycopg

    rows = 0
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        query = f"COPY ({_query(schema)}) TO STDOUT (FORMAT binary)"
        with cursor.copy(query) as copy:
            copy.set_types(["text"] * 4 + ["timestamptz"] + ["numeric"] * 6 + ["int8"] * 1
                           + ["numeric"] * 2)  # fmt: skip
            pending: list[tuple[Any, ...]] = []
            for row in copy.rows():
                pending.append(row)
                if len(pending) == BATCH_ROWS:
                    rows += _to_batch(pending).num_rows
                    pending = []
            rows += _to_batch(pending).num_rows if pending else 0
    return rows


class _CopyStream(io.RawIOBase):
    """A file-like view of a COPY's data messages, for Arrow's CSV reader."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._rest = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        parts, have = [self._rest], len(self._rest)
        while size < 0 or have < size:
            chunk = self._copy.read()
            if not chunk:
                break
            parts.append(bytes(chunk))
            have += len(chunk)
        data = b"".join(parts)
        cut = len(data) if size < 0 else size
        self._rest = data[cut:]
        return data[:cut]


def read_copy_csv(url: str, schema: str) -> int:
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from marketexport.datasets import OHLCV

    types = {name: OHLCV.column(name).arrow_type for name in COLUMNS}
    types["time"] = pa.timestamp("us", tz="UTC")
    rows = 0
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY ({_query(schema)}) TO STDOUT (FORMAT csv)") as copy:
            reader = pcsv.open_csv(
                _CopyStream(copy),
                read_options=pcsv.ReadOptions(column_names=COLUMNS, block_size=1 << 20),
                convert_options=pcsv.ConvertOptions(
                    column_types=types, quoted_strings_can_be_null=False
                ),
            )
            for batch in reader:
                batch.column(4).cast(pa.timestamp("ns"))
                rows += batch.num_rows
    return rows


def read_cursor(url: str, schema: str) -> int:
    import psycopg

    rows = 0
    with psycopg.connect(url) as connection, connection.transaction():
        with connection.cursor(name="marketexport_bench") as cursor:
            cursor.itersize = BATCH_ROWS
            cursor.execute(_query(schema))
            while fetched := cursor.fetchmany(BATCH_ROWS):
                rows += _to_batch(fetched).num_rows
    return rows


def _csv_scan(store: Any, url: str) -> Any:
    """A scan for ``store`` that reads the store's own query by psycopg's COPY ... csv."""
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from marketexport.datasets import DECIMAL_TYPE
    from marketexport.store.pglayout import nanos_name
    from marketexport.store.pgquery import scan_sql
    from marketexport.store.pgread import ScanReader

    def scan(spec: Any, filters: Any, columns: list[str], batch_rows: int) -> ScanReader:
        probe = store._acquire()
        table = store.table(spec, probe)
        store._release(probe)
        names, types = [], {}
        for name in columns:
            kind = spec.column(name).kind
            names.append(name)
            types[name] = {"decimal": DECIMAL_TYPE, "time": pa.timestamp("us", tz="UTC")}.get(
                kind, spec.column(name).arrow_type
            )
            if kind == "time":
                names.append(nanos_name(name))
                types[nanos_name(name)] = pa.int16()
        connection = psycopg.connect(url)
        copying = connection.cursor().copy(
            f"COPY ({scan_sql(table, columns, '')}) TO STDOUT (FORMAT csv)"
        )
        source = pcsv.open_csv(
            _CopyStream(copying.__enter__()),
            read_options=pcsv.ReadOptions(column_names=names, block_size=4 << 20),
            convert_options=pcsv.ConvertOptions(
                column_types=types, quoted_strings_can_be_null=False
            ),
        )

        def finish(ok: bool) -> None:
            copying.__exit__(None, None, None)
            connection.close()

        return ScanReader(
            source, spec, columns, batch_rows, "bench",
            wrap=store._error, cancel=lambda: None, on_close=finish,
        )  # fmt: skip

    return scan


def export_through(url: str, schema: str, scan_by_csv: bool) -> int:
    import tempfile
    from pathlib import Path

    from marketexport.config import Settings
    from marketexport.export.pipeline import run_export
    from marketexport.request import build_request
    from marketexport.store.postgres import PostgresStore

    store = PostgresStore(url, settings=Settings(postgres={"schema": schema}))
    # the batch scans are what this compares, not the lines the server renders for CSV
    store.scan_lines = lambda *args: None  # type: ignore[method-assign]
    if scan_by_csv:
        store.scan = _csv_scan(store, url)  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as out:
        result = run_export(
            build_request(dataset="ohlcv", format="csv"),
            store,
            output_dir=Path(out),
            threads=os.cpu_count() or 1,
            batch_rows=32_768,
        )
    store.close()
    return result.manifest.rows


def run_way(way: str, url: str, schema: str) -> dict[str, float]:
    read = {
        "adbc": read_adbc,
        "copy-binary": read_copy_binary,
        "copy-csv": read_copy_csv,
        "cursor": read_cursor,
        "export-adbc": lambda u, s: export_through(u, s, False),
        "export-copy-csv": lambda u, s: export_through(u, s, True),
    }[way]
    started = time.perf_counter()
    rows = read(url, schema)
    elapsed = time.perf_counter() - started
    peak = _peak_rss_mb()
    return {"rows": rows, "seconds": elapsed, "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=os.environ.get("MARKETEXPORT_TEST_POSTGRES", DEFAULT_URL))
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_way(*args.child)))
        return

    schema = f"mx_bench_{secrets.token_hex(4)}"
    try:
        load_postgres(args.url, schema, args.rows)
        print(f"reading {args.rows:,} candles into Arrow batches (2 cores)")
        print("| way | rows/s | seconds | peak RSS (MB) |")
        print("| --- | ---: | ---: | ---: |")
        for way in args.ways.split(","):
            output = subprocess.run(
                [sys.executable, __file__, "--child", way, args.url, schema],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            result = json.loads(output.strip().splitlines()[-1])
            rate = result["rows"] / result["seconds"]
            print(
                f"| {way} | {rate:,.0f} | {result['seconds']:.1f} | {result['peak_rss_mb']:.0f} |",
                flush=True,
            )
    finally:
        subprocess.run(["psql", args.url, "-q", "-c", f'DROP SCHEMA "{schema}" CASCADE'], env=QUIET)


if __name__ == "__main__":
    main()
