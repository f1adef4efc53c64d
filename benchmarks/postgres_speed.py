"""CSV export speed and memory from PostgreSQL, beside DuckDB and psql's \\copy, in one run.

Loads N one-minute candles (default 1,000,000) into a
schema of its own in PostgreSQL and into a DuckDB file, then times, each in a fresh
subprocess so that its peak RSS is its own:

- marketexport's CSV export from PostgreSQL (the real pipeline, as the CLI runs it);
- marketexport's CSV export from a DuckDB file holding the same rows;
- ``psql -c "\\copy (SELECT ... ORDER BY ...) TO 'file' CSV HEADER"`` (the reference);
- marketexport from PostgreSQL over the first quarter of the rows, to show memory is flat.

The two marketexport files must be byte-identical (their SHA-256 is compared).

    python benchmarks/postgres_speed.py
    python benchmarks/postgres_speed.py --rows 200000 --url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
START_US = 1_577_836_800_000_000  # 2020-01-01, as export_speed.py
MINUTE_US = 60_000_000
# psql without NOTICE lines (DROP SCHEMA ... CASCADE lists every table it drops)
QUIET = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}


COLUMNS = (
    "exchange, symbol, timeframe, price_type, time, open, high, low, close, volume, "
    "quote_volume, trades, taker_buy_volume, taker_buy_quote_volume"
)
ORDER = "ORDER BY time, exchange, symbol, timeframe, price_type"
# The candles' values, as SQL over i = 0 .. N-1 (the same in both databases).
VALUES = (
    "30000 + (i % 9973) * 0.01, 30010 + (i % 9967) * 0.01, 29990 + (i % 9949) * 0.01, "
    "30005 + (i % 9941) * 0.01, (i % 100003) * 0.00001, (i % 100019) * 0.3000001, i % 5000, "
    "(i % 99991) * 0.000005, (i % 99989) * 0.15"
)


def build_duckdb(path: Path, rows: int) -> None:
    """The candles in a DuckDB store file, by one INSERT ... SELECT."""
    import duckdb

    from marketexport.store.duckdb import DuckDBStore

    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    try:
        con.execute(
            f"INSERT INTO ohlcv ({COLUMNS}) SELECT 'binance', 'BTC/USDT', '1m', 'trade', "
            f"make_timestamp_ns(({START_US} + i * {MINUTE_US}) * 1000), {VALUES} "
            f"FROM range({rows}) t(i)"
        ).fetchall()
    finally:
        con.close()


def load_postgres(url: str, schema: str, rows: int) -> None:
    """The same candles as export_speed.build_store, written by one INSERT ... SELECT."""
    from marketexport.config import Settings
    from marketexport.store.postgres import PostgresStore

    store = PostgresStore(url, settings=Settings(postgres={"schema": schema}))
    try:
        store.init_schema()
    finally:
        store.close()
    sql = f"""
        INSERT INTO "{schema}".ohlcv ({COLUMNS})
        SELECT 'binance', 'BTC/USDT', '1m', 'trade',
               timestamptz 'epoch' + ({START_US} + i * {MINUTE_US}) * interval '1 microsecond',
               {VALUES}
        FROM generate_series(0::bigint, {rows - 1}) AS i;
        ANALYZE "{schema}".ohlcv;
    """
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, env=QUIET)


def _peak_rss_mb(pid: int | str = "self") -> float:
    """The process's own peak RSS (VmHWM starts afresh at exec, unlike ru_maxrss, which a
    child inherits from the parent that forked it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_marketexport(store: str, schema: str, out: Path, end: str | None) -> dict[str, object]:
    from marketexport.config import Settings
    from marketexport.export.pipeline import run_export
    from marketexport.request import build_request
    from marketexport.store.duckdb import DuckDBStore
    from marketexport.store.postgres import PostgresStore

    if store.startswith("postgresql://"):
        opened = PostgresStore(store, settings=Settings(postgres={"schema": schema}))
    else:
        opened = DuckDBStore(Path(store), read_only=True, memory_limit_mb=64)
    request = build_request(dataset="ohlcv", format="csv", end=end)
    started = time.perf_counter()
    result = run_export(
        request, opened, output_dir=out, threads=os.cpu_count() or 1, batch_rows=32_768
    )
    elapsed = time.perf_counter() - started
    opened.close()
    return {
        "seconds": elapsed,
        "rows": result.manifest.rows,
        "sha256": result.manifest.payload_sha256,
        "bytes": result.manifest.payload_bytes,
        "peak_rss_mb": _peak_rss_mb(),
    }


def child_psql(url: str, schema: str, out: Path) -> dict[str, object]:
    target = out / "psql.csv"
    query = f'SELECT {COLUMNS} FROM "{schema}".ohlcv {ORDER}'
    started = time.perf_counter()
    process = subprocess.Popen(
        ["psql", url, "-q", "-c", f"\\copy ({query}) TO '{target}' CSV HEADER"]
    )
    children = 0.0
    while process.poll() is None:
        try:
            children = max(children, _peak_rss_mb(process.pid))
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"psql failed with exit code {process.returncode}")
    lines = sum(block.count(b"\n") for block in _blocks(target))
    return {
        "seconds": elapsed,
        "rows": lines - 1,
        "bytes": target.stat().st_size,
        "peak_rss_mb": children,
    }


def _blocks(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return list(iter(lambda: handle.read(1 << 24), b""))


def run_child(*args: str) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=os.environ.get("MARKETEXPORT_TEST_POSTGRES", DEFAULT_URL))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "psql":
            result = child_psql(rest[0], rest[1], Path(rest[2]))
        else:
            end = rest[3] if len(rest) > 3 else None
            result = child_marketexport(rest[0], rest[1], Path(rest[2]), end)
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="mx-pgbench-"))
    schema = f"mx_bench_{secrets.token_hex(4)}"
    try:
        print(f"loading {args.rows:,} candles into PostgreSQL ({schema}) and DuckDB...")
        load_postgres(args.url, schema, args.rows)
        duck = work / "store.duckdb"
        build_duckdb(duck, args.rows)
        quarter_ms = (START_US + (args.rows // 4) * MINUTE_US) // 1000
        cases = {
            "marketexport from PostgreSQL": ("export", args.url, schema, str(work / "pg")),
            "marketexport from DuckDB": ("export", str(duck), schema, str(work / "duck")),
            "psql \\copy ... TO (CSV)": ("psql", args.url, schema, str(work / "psql")),
            "marketexport from PostgreSQL, first 25 %": (
                "export", args.url, schema, str(work / "pg25"), str(quarter_ms),
            ),
        }  # fmt: skip
        results = {}
        for label, case in cases.items():
            Path(case[3]).mkdir()
            results[label] = run_child(*case)
            print(f"  {label}: {results[label]}", flush=True)
        report(args.rows, results)
    finally:
        subprocess.run(["psql", args.url, "-q", "-c", f'DROP SCHEMA "{schema}" CASCADE'], env=QUIET)
        shutil.rmtree(work, ignore_errors=True)


def report(rows: int, results: dict[str, dict[str, object]]) -> None:
    reference = results["psql \\copy ... TO (CSV)"]
    pg = results["marketexport from PostgreSQL"]
    duck = results["marketexport from DuckDB"]
    same = pg["sha256"] == duck["sha256"]
    print(
        f"\nCSV export of {rows:,} candles (2 cores); PostgreSQL and DuckDB files identical: {same}"
    )
    print("| how | rows/s | × psql \\copy | peak RSS (MB) |")
    print("| --- | ---: | ---: | ---: |")
    base = float(reference["rows"]) / float(reference["seconds"])  # type: ignore[arg-type]
    for label, result in results.items():
        rate = float(result["rows"]) / float(result["seconds"])  # type: ignore[arg-type]
        print(f"| {label} | {rate:,.0f} | {rate / base:.2f} | {result['peak_rss_mb']:.0f} |")
    if not same:
        sys.exit("the PostgreSQL and DuckDB exports differ")


if __name__ == "__main__":
    main()
