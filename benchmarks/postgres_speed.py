"""CSV export from PostgreSQL beside DuckDB and psql's \\copy: the PostgreSQL half of
``export_speed.py --store postgresql://...``.

For each size N, N one-minute candles (export_speed's, the same values in both stores) go
into a schema of their own in the given database (``marketexport_bench_<N>``, through
``options=-csearch_path=...`` in the URL) and into a DuckDB file. Then, each in a fresh
subprocess so that its peak RSS is its own:

- marketexport's CSV export from PostgreSQL (the real pipeline, as the CLI runs it);
- ``psql -c "\\copy (SELECT ... ORDER BY ...) TO 'file' CSV HEADER"`` (the reference;
  its server backend's work counts in its time, not in its RSS);
- these two again, in the same order (each way's best run counts: see _measure_size);
- marketexport's CSV export from the DuckDB file.

The two marketexport files must be byte-identical (their SHA-256 is compared) and the one
from PostgreSQL is checked value by value against the DuckDB file (export_speed's
check_exact). Peak RSS at the two sizes shows whether memory stays flat.

    python benchmarks/export_speed.py --store postgresql://postgres@127.0.0.1/mx_pgbench
    python benchmarks/export_speed.py --store postgresql://... --rows 200000 --keep
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from export_speed import (
    CANDLE_VALUES,
    CANDLES_START_US,
    _peak_rss_mb,
    build_store,
    check_exact,
    columns_sql,
    order_sql,
    run_child,
)

__all__ = ["DEFAULT_URL", "QUIET", "_peak_rss_mb", "load_postgres", "measure_postgres"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
# psql without NOTICE lines (DROP SCHEMA ... CASCADE lists every table it drops)
QUIET = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}


def in_schema(url: str, schema: str) -> str:
    """The URL with ``schema`` first on its search_path, for marketexport and psql alike."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}', safe='')}"


def load_postgres(url: str, schema: str, rows: int) -> None:
    """The candles of export_speed.build_store in ``schema``, by one INSERT ... SELECT."""
    from marketexport.config import Settings
    from marketexport.store.postgres import PostgresStore

    store = PostgresStore(url, settings=Settings(postgres={"schema": schema}))
    try:
        store.init_schema()
    finally:
        store.close()
    sql = f"""
        INSERT INTO "{schema}".ohlcv ({columns_sql("ohlcv")})
        SELECT 'binance', 'BTC/USDT', '1m', 'trade',
               timestamptz 'epoch' + ({CANDLES_START_US} + i * 60000000)
                                     * interval '1 microsecond',{CANDLE_VALUES}
        FROM generate_series(0::bigint, {rows - 1}) AS i;
        ANALYZE "{schema}".ohlcv;
    """
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, env=QUIET)


def _count(url: str, schema: str) -> int | None:
    """Rows in ``schema``.ohlcv, or None when there is no such table."""
    done = subprocess.run(
        ["psql", url, "-qAt", "-c", f'SELECT count(*) FROM "{schema}".ohlcv'],
        capture_output=True,
        text=True,
        env=QUIET,
    )
    return int(done.stdout) if done.returncode == 0 and done.stdout.strip() else None


def _drop(url: str, schema: str) -> None:
    command = f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'
    subprocess.run(["psql", url, "-q", "-c", command], check=True, env=QUIET)


def case_psql(url: str, out: Path, fmt: str, codec: str, dataset: str) -> dict[str, object]:
    """``psql``'s ``\\copy (SELECT ...) TO 'file' CSV HEADER``, the selection marketexport
    exports; rows counted from the file, peak RSS polled from psql's /proc entry."""
    if (fmt, codec) != ("csv", "none"):
        raise SystemExit(f"psql's \\copy is measured for csv without compression, not {fmt}")
    target = out / "psql.csv"
    query = f"SELECT {columns_sql(dataset)} FROM {dataset} {order_sql(dataset)}"
    started = time.perf_counter()
    process = subprocess.Popen(
        ["psql", url, "-q", "-c", f"\\copy ({query}) TO '{target}' CSV HEADER"]
    )
    peak_mb = 0.0
    while process.poll() is None:
        try:
            peak_mb = max(peak_mb, _peak_rss_mb(process.pid))
        except (OSError, ValueError):
            pass  # psql ended between poll() and the read
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"psql failed with exit code {process.returncode}")
    with target.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))
    return {
        "seconds": elapsed,
        "rows": lines - 1,
        "file_bytes": target.stat().st_size,
        "peak_rss_mb": peak_mb,
    }


def measure_postgres(
    url: str, sizes: list[int], work: Path, keep: bool = False
) -> list[dict[str, Any]]:
    """One row of results per size: the three ways' rows/s and peak RSS, and exactness."""
    found = []
    for rows in sizes:
        schema = f"marketexport_bench_{rows}"
        if _count(url, schema) != rows:
            print(f"loading {rows:,} candles into PostgreSQL ({schema}) ...", file=sys.stderr)
            _drop(url, schema)
            load_postgres(url, schema, rows)
        duck = work / f"bench-ohlcv-{rows}.duckdb"
        if not duck.exists():
            print(f"building a DuckDB store of {rows:,} candles ...", file=sys.stderr)
            build_store(duck, rows)
        try:
            found.append(_measure_size(in_schema(url, schema), duck, rows, work))
        finally:
            if not keep:
                _drop(url, schema)
    return found


def _measure_size(url: str, duck: Path, rows: int, work: Path) -> dict[str, Any]:
    """marketexport from PostgreSQL and ``psql`` twice each, alternating, and the best of
    each pair: whichever runs first reads the table into the server's buffers for the next
    (a run right after another way's is up to 10% faster), so neither gets only the warm
    runs. marketexport from DuckDB once, for the bytes to compare."""
    csv = ["csv", "none", "ohlcv"]
    runs: dict[str, list[dict[str, Any]]] = {"pg": [], "psql": [], "duck": []}
    for way in ("pg", "psql", "pg", "psql", "duck"):
        out = work / f"out-{way}-{rows}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        kind, where = {"pg": ("marketexport", url), "psql": ("psql", url)}.get(
            way, ("marketexport", str(duck))
        )
        measured = run_child(["--child", kind, where, str(out), *csv])
        if measured["rows"] != rows:
            raise SystemExit(f"{way} exported {measured['rows']} rows of {rows}")
        if way != "psql":
            measured["exact"] = check_exact(duck, measured, "csv", "none") if way == "pg" else None
        runs[way].append(measured)
        shutil.rmtree(out, ignore_errors=True)
    result: dict[str, Any] = {"rows": rows}
    for way, measured_runs in runs.items():
        result[f"{way}_rows_s"] = max(rows / float(m["seconds"]) for m in measured_runs)
        result[f"{way}_each_rows_s"] = [round(rows / float(m["seconds"])) for m in measured_runs]
        result[f"{way}_rss_mb"] = max(m["peak_rss_mb"] for m in measured_runs)
    result["vs_psql"] = result["pg_rows_s"] / result["psql_rows_s"]
    duck_sha = runs["duck"][0]["payload_sha256"]
    result["identical"] = all(m["payload_sha256"] == duck_sha for m in runs["pg"])
    verdicts = {m["exact"] for m in runs["pg"]}
    result["exact"] = verdicts.pop() if len(verdicts) == 1 else ", ".join(sorted(verdicts))
    print(result, file=sys.stderr, flush=True)
    return result


def postgres_markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | from PostgreSQL rows/s (each run) | × psql `\\copy` | from DuckDB rows/s | "
        "psql `\\copy` rows/s (each run) | peak RSS MB (PostgreSQL / DuckDB / psql) | "
        "identical to DuckDB's | exact |",
        "|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in results:
        each = {way: "; ".join(f"{v:,}" for v in r[f"{way}_each_rows_s"]) for way in ("pg", "psql")}
        lines.append(
            f"| {r['rows']:,} | {r['pg_rows_s']:,.0f} ({each['pg']}) | {r['vs_psql']:.2f} | "
            f"{r['duck_rows_s']:,.0f} | {r['psql_rows_s']:,.0f} ({each['psql']}) | "
            f"{r['pg_rss_mb']:.0f} / {r['duck_rss_mb']:.0f} / {r['psql_rss_mb']:.0f} | "
            f"{'yes' if r['identical'] else 'NO'} | {r['exact']} |"
        )
    return "\n".join(lines)
