"""Export speed and memory, side by side in one run.

Builds a store of N synthetic one-minute candles (default 5,000,000) and times, for each
format and codec:

- marketexport's export (the real pipeline, as the CLI runs it);
- the naive approach: rows as a list of dicts -> pandas DataFrame -> to_csv / to_json /
  to_parquet -> read the whole file back -> compress it whole -> write;
- DuckDB's own ``COPY (SELECT ... ORDER BY ...) TO`` with the same format and codec.

Each measurement runs in a fresh subprocess so that its peak RSS is its own. The naive
approach holds everything in memory, so it runs on at most --naive-rows rows; its figure is
rows/s all the same. Every marketexport export is checked for exactness against the store.

    python benchmarks/export_speed.py                   # 5,000,000 rows, writes README table
    python benchmarks/export_speed.py --rows 1000000 --no-readme

With ``--store postgresql://...`` it measures a CSV export from PostgreSQL instead, beside
the same export from a DuckDB file with the same candles and ``psql``'s ``\\copy (SELECT
...) TO`` (CSV), at each of --rows (postgres_speed.py has that half; README is left alone):

    python benchmarks/export_speed.py --store postgresql://postgres@127.0.0.1/mx_pgbench
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from marketexport.config import Settings

# The product's own defaults (batch size, DuckDB memory limit) with every core for the
# export, as DuckDB's COPY has: what `MARKETEXPORT_CPU_FRACTION=1 marketexport export` runs.
DEFAULTS = Settings(cpu_fraction=1.0)

REPO = Path(__file__).resolve().parent.parent
CASES = [
    ("csv", "none"),
    ("csv", "gzip"),
    ("csv", "zstd"),
    ("jsonl", "none"),
    ("jsonl", "zstd"),
    ("json", "none"),
    ("parquet", "zstd"),
]
ORDERBOOK_CASES = [("csv", "none"), ("csv", "gzip"), ("jsonl", "none"), ("parquet", "zstd")]
# One-minute candles of one market, as SQL over i = 0 .. N-1 that DuckDB and PostgreSQL
# both read (the same values in either store).
CANDLES_START_US = 1_577_836_800_000_000  # 2020-01-01
CANDLE_VALUES = """
               (30000 + (i % 9973) * 0.01),
               (30010 + (i % 9967) * 0.01),
               (29990 + (i % 9949) * 0.01),
               (30005 + (i % 9941) * 0.01),
               ((i % 100003) * 0.00001),
               ((i % 100019) * 0.3000001),
               (i % 5000)::BIGINT,
               ((i % 99991) * 0.000005),
               ((i % 99989) * 0.15)"""


def columns_sql(dataset: str) -> str:
    from marketexport.datasets import get_dataset

    return ", ".join(get_dataset(dataset).column_names)


def order_sql(dataset: str) -> str:
    from marketexport.datasets import get_dataset

    return "ORDER BY " + ", ".join(get_dataset(dataset).order_by)


def build_orderbook_store(path: Path, rows: int) -> None:
    """N order-book rows: snapshots of 20 levels a side every 100 ms, via DuckDB SQL."""
    import duckdb

    from marketexport.store.duckdb import DuckDBStore

    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    start_us = 1_725_148_800_000_000  # 2024-09-01
    con.execute(
        f"""
        INSERT INTO orderbook
        SELECT 'binance', 'BTC/USDT:USDT',
               make_timestamp_ns(({start_us} + (i // 40) * 100000) * 1000),
               0, 'snapshot', CASE WHEN i % 40 < 20 THEN 'bid' ELSE 'ask' END,
               (CASE WHEN i % 40 < 20 THEN 58000.0 - (i % 20) * 0.1
                     ELSE 58000.1 + (i % 20) * 0.1 END
                + ((i // 40) % 500) * 0.1),
               ((i % 997) * 0.001 + 0.001),
               (i % 20)::BIGINT, 5000000000 + i // 40, NULL, NULL,
               make_timestamp_ns(({start_us} + (i // 40) * 100000 + 1271) * 1000)
        FROM range({rows}) t(i)
        """
    ).fetchall()
    con.close()


def build_store(path: Path, rows: int) -> None:
    """N one-minute candles of one market with realistic decimals, via DuckDB SQL."""
    import duckdb

    from marketexport.store.duckdb import DuckDBStore

    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        f"""
        INSERT INTO ohlcv
        SELECT 'binance', 'BTC/USDT', '1m', 'trade',
               make_timestamp_ns(({CANDLES_START_US} + i * 60000000) * 1000),{CANDLE_VALUES}
        FROM range({rows}) t(i)
        """
    ).fetchall()
    con.close()


def _peak_rss_mb(pid: int | str = "self") -> float:
    """A process's own peak RSS (VmHWM): ru_maxrss would carry the parent's across exec."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case_marketexport(
    store: Path | str, out: Path, fmt: str, codec: str, dataset: str = "ohlcv"
) -> dict[str, object]:
    """The export as the CLI runs it, from a DuckDB file or a ``postgresql://`` URL."""
    from marketexport.export.pipeline import run_export
    from marketexport.request import build_request
    from marketexport.store.duckdb import DuckDBStore
    from marketexport.store.postgres import PostgresStore

    opened: DuckDBStore | PostgresStore
    if isinstance(store, str):
        opened = PostgresStore(store, settings=DEFAULTS)
    else:
        opened = DuckDBStore(
            store,
            read_only=True,
            threads=DEFAULTS.cpu_threads,
            memory_limit_mb=DEFAULTS.store_memory_mb,
        )
    request = build_request(dataset=dataset, format=fmt, compression=codec)
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
    return {
        "seconds": elapsed,
        "rows": result.manifest.rows,
        "payload_bytes": result.manifest.payload_bytes,
        "payload_sha256": result.manifest.payload_sha256,
        "file_bytes": result.manifest.file_bytes,
        "path": str(result.path),
        "peak_rss_mb": _peak_rss_mb(),
    }


def case_duckdb(
    store: Path, out: Path, fmt: str, codec: str, dataset: str = "ohlcv"
) -> dict[str, object]:
    import duckdb

    con = duckdb.connect(str(store), read_only=True, config={"memory_limit": "1GB"})
    options = {
        "csv": "HEADER",
        "jsonl": "FORMAT json",
        "json": "FORMAT json, ARRAY true",
        "parquet": "FORMAT parquet",
    }[fmt]
    if codec != "none":
        options += f", COMPRESSION {codec}"
    target = out / f"duckdb.{fmt}"
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT {columns_sql(dataset)} FROM {dataset} {order_sql(dataset)}) "
        f"TO '{target}' ({options})"
    ).fetchall()
    elapsed = time.perf_counter() - started
    rows = con.execute(f"SELECT count(*) FROM {dataset}").fetchall()[0][0]
    con.close()
    return {
        "seconds": elapsed,
        "rows": rows,
        "file_bytes": target.stat().st_size,
        "peak_rss_mb": _peak_rss_mb(),
    }


def case_naive(
    store: Path, out: Path, fmt: str, codec: str, limit: int, dataset: str = "ohlcv"
) -> dict[str, object]:
    import gzip

    import duckdb
    import pandas as pd
    import zstandard

    con = duckdb.connect(str(store), read_only=True)
    started = time.perf_counter()
    cursor = con.execute(
        f"SELECT {columns_sql(dataset)} FROM {dataset} {order_sql(dataset)} LIMIT {limit}"
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    frame = pd.DataFrame(rows)
    target = out / f"naive.{fmt}"
    if fmt == "csv":
        frame.to_csv(target, index=False)
    elif fmt == "jsonl":
        frame.to_json(target, orient="records", lines=True, date_format="iso")
    elif fmt == "json":
        frame.to_json(target, orient="records", date_format="iso")
    else:
        frame.to_parquet(target, compression=codec)
    if fmt != "parquet" and codec != "none":
        data = target.read_bytes()
        packed = gzip.compress(data) if codec == "gzip" else zstandard.compress(data)
        target.with_suffix(".packed").write_bytes(packed)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rows": len(rows), "peak_rss_mb": _peak_rss_mb()}


def check_exact(
    store: Path, result: dict[str, object], fmt: str, codec: str, dataset: str = "ohlcv"
) -> str:
    """Compare the export's values with the store's; return 'exact' or what differs."""
    import duckdb

    from marketexport.datasets import DECIMAL_TYPE, get_dataset
    from marketexport.export.compression import iter_decompressed
    from marketexport.export.verify import iter_file

    spec = get_dataset(dataset)
    decimal_sql = f"DECIMAL({DECIMAL_TYPE.precision}, {DECIMAL_TYPE.scale})"
    path = Path(str(result["path"]))
    con = duckdb.connect()
    con.execute(f"ATTACH '{store}' AS src (READ_ONLY)").fetchall()
    store_side = ", ".join(
        f"epoch_ns({c.name})" if c.kind == "time" else c.name for c in spec.columns
    )
    if fmt == "parquet":
        source = f"read_parquet('{path}')"
        cast = store_side
    else:
        plain = path.with_name(path.name + ".plain")
        with plain.open("wb") as handle:
            for chunk in iter_decompressed(iter_file(path), codec):
                handle.write(chunk)
        if fmt == "csv":
            source = f"read_csv('{plain}', all_varchar=true)"
        else:
            # Read every value as text: DuckDB's JSON number parsing goes through a double.
            columns = "{" + ", ".join(f"'{c.name}': 'VARCHAR'" for c in spec.columns) + "}"
            layout = "array" if fmt == "json" else "newline_delimited"
            source = f"read_json('{plain}', format='{layout}', columns={columns})"
        typed = {
            "decimal": decimal_sql,
            "integer": "BIGINT",
            "boolean": "BOOLEAN",
            "text": "VARCHAR",
            "id": "VARCHAR",
        }
        cast = ", ".join(
            f"epoch_ns(CAST(replace({c.name}, 'Z', '') AS TIMESTAMP_NS))"
            if c.kind == "time"
            else f"CAST(nullif({c.name}, '') AS {typed[c.kind]})"
            for c in spec.columns
        )
    differing = con.execute(
        f"SELECT count(*) FROM (SELECT {cast} FROM {source} "
        f"EXCEPT ALL SELECT {store_side} FROM src.{dataset})"
    ).fetchall()[0][0]
    if fmt != "parquet":
        plain.unlink()
    return "exact" if differing == 0 else f"{differing} rows differ"


def run_child(args: list[str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    output = done.stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(
    rows: int, work: Path, naive_rows: int, dataset: str = "ohlcv"
) -> list[dict[str, object]]:
    store = work / f"bench-{dataset}-{rows}.duckdb"
    if not store.exists():
        print(f"building a store of {rows:,} {dataset} rows ...", file=sys.stderr)
        (build_orderbook_store if dataset == "orderbook" else build_store)(store, rows)
    table = []
    for fmt, codec in ORDERBOOK_CASES if dataset == "orderbook" else CASES:
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        where = [str(store), str(out), fmt, codec]
        ours = run_child(["--child", "marketexport", *where, dataset])
        exact = check_exact(store, ours, fmt, codec, dataset)
        duck = run_child(["--child", "duckdb", *where, dataset])
        naive = run_child(["--child", "naive", *where, str(naive_rows), dataset])
        row = {
            "dataset": dataset,
            "format": fmt,
            "codec": codec,
            "rows": ours["rows"],
            "ours_rows_s": ours["rows"] / ours["seconds"],
            "duckdb_rows_s": duck["rows"] / duck["seconds"],
            "naive_rows_s": naive["rows"] / naive["seconds"],
            "compression_ratio": ours.get("payload_bytes", 0) / ours["file_bytes"],
            "ours_rss_mb": ours["peak_rss_mb"],
            "duckdb_rss_mb": duck["peak_rss_mb"],
            "naive_rss_mb": naive["peak_rss_mb"],
            "naive_rows": naive["rows"],
            "exact": exact,
        }
        row["vs_duckdb"] = row["ours_rows_s"] / row["duckdb_rows_s"]
        row["vs_naive"] = row["ours_rows_s"] / row["naive_rows_s"]
        print(json.dumps(row), file=sys.stderr)
        table.append(row)
    return table


def conditions(load_before: float, load_after: float, naive_rows: int) -> str:
    """What the table was measured under, so that nobody reads it as an idle machine's."""
    cores = os.cpu_count() or 1
    return (
        f"Measured on a {cores}-core machine, load average {load_before:.1f} at the start and "
        f"{load_after:.1f} at the end (1-minute), marketexport and DuckDB each with all "
        f"{cores} cores (`MARKETEXPORT_CPU_FRACTION=1`); the naive approach ran on at most "
        f"{naive_rows:,} rows. Ratios come from the same run and mean more than the absolute "
        "rows/s on a shared machine. Peak RSS is each process's own (VmHWM).\n"
    )


def markdown(results: dict[str, list[dict[str, object]]]) -> str:
    lines = [
        "| dataset | rows | format | codec | marketexport rows/s | × DuckDB COPY | × naive | "
        "compression | peak RSS MB (ours / DuckDB / naive) | exact |",
        "|---|---:|---|---|---:|---:|---:|---:|---|---|",
    ]
    for table in results.values():
        for r in table:
            lines.append(
                f"| {r['dataset']} | {r['rows']:,} | {r['format']} | {r['codec']} | "
                f"{r['ours_rows_s']:,.0f} | "
                f"{r['vs_duckdb']:.2f} | {r['vs_naive']:.1f} | {r['compression_ratio']:.2f} | "
                f"{r['ours_rss_mb']:.0f} / {r['duckdb_rss_mb']:.0f} / {r['naive_rss_mb']:.0f} | "
                f"{r['exact']} |"
            )
    return "\n".join(lines)


def write_readme(text: str, readme: Path) -> None:
    begin, end = "<!-- bench:export_speed -->", "<!-- /bench:export_speed -->"
    content = readme.read_text(encoding="utf-8")
    block = f"{begin}\n{text}\n{end}"
    if begin in content:
        content = re.sub(re.escape(begin) + ".*?" + re.escape(end), block, content, flags=re.S)
    else:
        content += "\n" + block + "\n"
    readme.write_text(content, encoding="utf-8")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, store, out, fmt, codec, *rest = sys.argv[2:]
        runner = {"marketexport": case_marketexport, "duckdb": case_duckdb}
        # a database URL stays a string; a DuckDB file is a path
        where: Path | str = store if "://" in store else Path(store)
        if kind == "naive":
            result = case_naive(Path(store), Path(out), fmt, codec, int(rest[0]), rest[1])
        elif kind == "psql":
            from postgres_speed import case_psql

            result = case_psql(store, Path(out), fmt, codec, rest[0])
        else:
            result = runner[kind](where, Path(out), fmt, codec, rest[0])
        print(json.dumps(result))
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--naive-rows", type=int, default=500_000)
    parser.add_argument(
        "--orderbook-rows", type=int, default=5_000_000, help="0 leaves the order book out"
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--store",
        help="a postgresql:// URL: CSV from PostgreSQL beside DuckDB and psql's \\copy instead",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep (and reuse) the PostgreSQL bench schemas"
    )
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="marketexport-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.store:
        from postgres_speed import measure_postgres, postgres_markdown

        found = measure_postgres(args.store, args.rows, work, keep=args.keep)
        print(postgres_markdown(found))
        if args.json:
            args.json.write_text(json.dumps(found, indent=2))
        return
    load_before = os.getloadavg()[0]
    results = {
        f"ohlcv-{rows}": measure(rows, work, min(args.naive_rows, rows)) for rows in args.rows
    }
    if args.orderbook_rows:
        rows = args.orderbook_rows
        results[f"orderbook-{rows}"] = measure(rows, work, min(args.naive_rows, rows), "orderbook")
    text = conditions(load_before, os.getloadavg()[0], args.naive_rows) + "\n" + markdown(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not args.no_readme:
        write_readme(text, REPO / "README.md")


if __name__ == "__main__":
    main()
