"""Ten concurrent export tasks beside the same ten run one after another.

Builds a store of N one-minute candles for each of E symbols (default 1,000,000 x 10),
queues one task per symbol, and runs them with ``marketexport run-worker --until-idle``
in a subprocess twice: with ``--concurrency 1`` (one after another) and with
``--concurrency E``. While each worker runs, psutil samples its whole process tree every
0.2 s for RSS and CPU time. Every output is checked with verify_export.

Reported per run: wall time (first task start to last task end, from the task store),
aggregate rows/s, rows per CPU-second (the work done whatever share of the cores the
scheduler gave the worker: on a machine busy with other work this is the fair
comparison), mean CPU use of the process tree over its life (in cores and as a share of
the machine), and peak RSS. ``--repeat N`` alternates N pairs of runs and compares the
medians. Targets: peak RSS under 2 GB, concurrent throughput at
least 0.9x sequential, mean CPU within the budget (cpu_fraction x cores).

    python benchmarks/concurrent_exports.py                     # 10 x 1,000,000 rows, CSV
    python benchmarks/concurrent_exports.py --rows 200000 --format parquet --compression zstd
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil

from marketexport.config import load_settings
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.model import TaskState
from marketexport.tasks.store import TaskStore

T0_NS = 1_700_000_000_000_000_000
MINUTE_NS = 60_000_000_000
WORKER = [sys.executable, "-c", "from marketexport.cli import run; run()", "run-worker"]
RSS_LIMIT_BYTES = 2 * 1024**3


@dataclass
class RunFigures:
    """What one worker run measured."""

    label: str
    concurrency: int
    rows: int
    wall_s: float
    process_s: float
    cpu_s: float
    peak_rss_bytes: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s

    @property
    def rows_per_cpu_s(self) -> float:
        """Rows per second of CPU used: the work done, whatever share of the cores it got."""
        return self.rows / self.cpu_s

    @property
    def mean_cpu_cores(self) -> float:
        return self.cpu_s / self.process_s


def symbols(count: int) -> list[str]:
    return [f"S{i:02d}/USDT" for i in range(count)]


def build_store(path: Path, rows: int, count: int) -> None:
    """One-minute candles for each symbol, generated in SQL; reused when already built."""
    if path.exists():
        con = duckdb.connect(str(path), read_only=True)
        found = con.execute("SELECT count(*) FROM ohlcv").fetchall()[0][0]
        con.close()
        if found == rows * count:
            return
        path.unlink()
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    for symbol in symbols(count):
        con.execute(
            "INSERT INTO ohlcv SELECT 'binance', ?, '1m', 'trade', "
            f"make_timestamp_ns({T0_NS} + i * {MINUTE_NS}), "
            "CAST(90000 + (i % 1000) * 0.01 AS DECIMAL(38, 18)), "
            "CAST(90010.5 AS DECIMAL(38, 18)), CAST(0.00001234 AS DECIMAL(38, 18)), "
            "CAST(75036192.45844001 AS DECIMAL(38, 18)), "
            "CAST((i % 1000) * 0.00001 AS DECIMAL(38, 18)), CAST(i * 0.5 AS DECIMAL(38, 18)), "
            "i % 5000, NULL, NULL FROM range(?) t(i)",
            [symbol, rows],
        ).fetchall()
    con.close()


def sample_tree(process: psutil.Process) -> tuple[int, float]:
    """(RSS, CPU seconds) of a process and all its descendants."""
    rss, cpu = 0, 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            rss += member.memory_info().rss
            times = member.cpu_times()
            cpu += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return rss, cpu


def run_worker(args: argparse.Namespace, store: Path, work: Path, concurrency: int) -> RunFigures:
    """Queue one export per symbol, run them with one worker process, and measure it."""
    data_dir = work / f"data-c{concurrency}"
    shutil.rmtree(data_dir, ignore_errors=True)
    tasks = TaskStore(data_dir / "tasks.sqlite3")
    ids = [
        tasks.submit(
            build_request(
                dataset="ohlcv", format=args.format, compression=args.compression,
                symbols=[symbol],
            )
        ).id
        for symbol in symbols(args.exports)
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETEXPORT_")}
    env.update(MARKETEXPORT_DATA_DIR=str(data_dir), MARKETEXPORT_STORE=str(store))
    command = [*WORKER, "--until-idle", "--concurrency", str(concurrency)]

    started = time.monotonic()
    child = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    process = psutil.Process(child.pid)
    peak_rss, cpu_s = 0, 0.0
    while child.poll() is None:
        try:
            rss, cpu = sample_tree(process)
        except psutil.NoSuchProcess:
            break
        peak_rss, cpu_s = max(peak_rss, rss), max(cpu_s, cpu)
        time.sleep(0.2)
    process_s = time.monotonic() - started
    if child.wait() != 0:
        raise SystemExit(f"the worker exited with {child.returncode}")

    done = [tasks.get(task_id) for task_id in ids]
    for task in done:
        if task.state != TaskState.COMPLETED or task.result is None:
            raise SystemExit(f"task {task.id} ended {task.state.value}: {task.error}")
        if task.result["rows"] != args.rows or not verify_export(Path(task.result["path"])).ok:
            raise SystemExit(f"task {task.id}: output does not verify")
    wall_s = max(t.finished_at or 0 for t in done) - min(t.started_at or 0 for t in done)
    tasks.close()
    if not args.keep:
        shutil.rmtree(data_dir / "exports", ignore_errors=True)
    label = "one after another" if concurrency == 1 else f"{concurrency} at once"
    return RunFigures(label, concurrency, args.rows * args.exports, wall_s, process_s, cpu_s,
                      peak_rss)  # fmt: skip


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load: other work competing for the cores."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def table(runs: list[RunFigures], budget_cores: float) -> str:
    cores = os.cpu_count() or 1
    lines = [
        "| run | wall s | rows/s (aggregate) | rows per CPU-s | mean CPU (cores) "
        "| share of machine | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.label} | {run.wall_s:.1f} | {run.rows_per_s:,.0f} | "
            f"{run.rows_per_cpu_s:,.0f} | "
            f"{run.mean_cpu_cores:.2f} (budget {budget_cores:.2f}) | "
            f"{100 * run.mean_cpu_cores / cores:.0f}% | {run.peak_rss_bytes / 1024**2:,.0f} MiB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per export")
    parser.add_argument("--exports", type=int, default=10)
    parser.add_argument("--format", default="csv")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--work-dir", type=Path, help="keep the store here between runs")
    parser.add_argument("--keep", action="store_true", help="keep the exported files")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs, alternated")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="concurrent-exports-"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "store.duckdb"
    print(f"load average at the start: {load_average()}")
    began = time.monotonic()
    build_store(store, args.rows, args.exports)
    print(f"store: {args.exports} x {args.rows:,} candles ({time.monotonic() - began:.1f} s)")

    settings = load_settings(environ={})
    budget_cores = settings.cpu_fraction * (os.cpu_count() or 1)
    # Alternate the two ways so that a change in the machine's other load hits both alike.
    runs: list[RunFigures] = []
    for _ in range(args.repeat):
        runs += [run_worker(args, store, work, c) for c in (1, args.exports)]
    print(f"{args.exports} exports of {args.rows:,} rows, {args.format}/{args.compression}, "
          f"{os.cpu_count()} cores, cpu_fraction {settings.cpu_fraction} "
          f"({settings.cpu_threads} threads)")  # fmt: skip
    print(table(runs, budget_cores))
    print(f"load average at the end: {load_average()}")
    sequential = [run for run in runs if run.concurrency == 1]
    concurrent = [run for run in runs if run.concurrency != 1]
    ratio = statistics.median(
        c.rows_per_s / s.rows_per_s for s, c in zip(sequential, concurrent, strict=True)
    )
    cpu_ratio = statistics.median(
        c.rows_per_cpu_s / s.rows_per_cpu_s for s, c in zip(sequential, concurrent, strict=True)
    )
    print(f"concurrent / sequential: rows/s x{ratio:.2f}, rows per CPU-second x{cpu_ratio:.2f}")
    checks = {
        "peak RSS under 2 GB": max(r.peak_rss_bytes for r in runs) < RSS_LIMIT_BYTES,
        f"throughput ratio {ratio:.2f} >= 0.9": ratio >= 0.9,
        "mean CPU within budget": all(r.mean_cpu_cores <= budget_cores for r in runs),
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'} {name}")
    if args.json:
        print(json.dumps([r.__dict__ for r in runs], indent=2))
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
