"""One export split by day over two Celery workers, beside the same export on the embedded runner.

Builds a store of N candles (default 1,000,000: two symbols over four days), then times the
same JSON Lines + zstd export four ways:

- ``embedded``: `marketexport run-worker --until-idle --concurrency 1`, the export whole;
- ``celery-1-whole``: one `celery-worker`, the export whole (the executor's own cost);
- ``celery-2-split``: two `celery-worker`s, ``--split-by day`` (parts only);
- ``celery-2-split-join``: the same with ``--join`` (parts, then one joined file).

Every worker process first runs a one-minute export, so that imports are not timed.
``--format parquet`` times the first three with Parquet (zstd inside), whose writer encodes
on one thread, so two workers can use two cores where one export cannot.

Times come from the task store: first claim (``started_at``) to ``finished_at`` of the task
(for a split export: the parent, so planning, every part, the final step and the join are
inside). CPU is the user+system time of the worker process trees over the run (psutil).
Workers start before the clock and are stopped after; Redis keys live under a prefix of
their own and are deleted at the end. Every output is verified, and every variant's payload
SHA-256 must equal the embedded export's (the joined file's; the parts' in order).
``--repeat N`` alternates the variants N times and reports the best time of each.

    python benchmarks/distributed_export.py                    # 1,000,000 rows, 2 repeats
    python benchmarks/distributed_export.py --rows 500000 --repeat 1 --format parquet
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil
import redis
import zstandard

from marketexport.config import load_settings
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.executor import dispatch
from marketexport.tasks.split import split_request
from marketexport.tasks.split_plan import parse_split
from marketexport.tasks.store import TaskStore

CLI = [sys.executable, "-c", "from marketexport.cli import run; run()"]
REDIS_URL = "redis://127.0.0.1:6379/0"
T0_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
DAYS = 4
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def build_store(path: Path, rows: int) -> None:
    """``rows`` candles, evenly spaced over four days, for two symbols."""
    DuckDBStore(path).close()
    per_symbol = rows // len(SYMBOLS)
    step_ns = DAYS * 86_400 * 10**9 // per_symbol
    con = duckdb.connect(str(path))
    for symbol in SYMBOLS:
        con.execute(
            "INSERT INTO ohlcv SELECT 'binance', ?, '1m', 'trade', "
            f"make_timestamp_ns({T0_NS} + i * {step_ns}), "
            "(30000 + (i % 9973) * 0.01)::DECIMAL(38,18), "
            "(30010 + (i % 9967) * 0.01)::DECIMAL(38,18), "
            "(29990 + (i % 9949) * 0.01)::DECIMAL(38,18), "
            "(30005 + (i % 9941) * 0.01)::DECIMAL(38,18), "
            "((i % 100003) * 0.00001)::DECIMAL(38,18), "
            "((i % 100019) * 0.3000001)::DECIMAL(38,18), (i % 5000)::BIGINT, "
            "((i % 99991) * 0.000005)::DECIMAL(38,18), ((i % 99989) * 0.15)::DECIMAL(38,18) "
            "FROM range(?) t(i)",
            [symbol, per_symbol],
        ).fetchall()
    con.close()


class Deployment:
    """A data directory, its environment and the worker processes started in it."""

    def __init__(self, root: Path, store: Path, prefix: str) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.store = store
        self.prefix = prefix
        self.processes: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETEXPORT_")}
        env.update(
            MARKETEXPORT_DATA_DIR=str(self.data_dir),
            MARKETEXPORT_STORE=str(self.store),
            MARKETEXPORT_EXECUTOR="celery",
            MARKETEXPORT_REDIS_URL=REDIS_URL,
            MARKETEXPORT_CELERY_KEY_PREFIX=self.prefix,
            MARKETEXPORT_CELERY_QUEUE=self.prefix + "exports",
            MARKETEXPORT_CELERY_SWEEP_S="1",
            MARKETEXPORT_CPU_FRACTION="1.0",
        )
        return env

    def settings(self) -> Any:
        values = {k[len("MARKETEXPORT_") :].lower(): v for k, v in self.env().items()
                  if k.startswith("MARKETEXPORT_")}  # fmt: skip
        return load_settings(values, environ={})

    def start(self, *args: str, wait_for: str | None = None) -> subprocess.Popen[bytes]:
        log = self.root / f"process{len(self.processes)}.log"
        command = [*CLI, *args] + (["--logfile", str(log)] if wait_for else [])
        with (self.root / f"process{len(self.processes)}.out").open("wb") as out:
            process = subprocess.Popen(
                command, env=self.env(), stdout=out, stderr=out, start_new_session=True
            )
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while wait_for and not (log.exists() and wait_for in log.read_text()):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{args} did not start; see {log}")
            time.sleep(0.05)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    total = 0.0
    for process in processes:
        try:
            tree = [psutil.Process(process.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for member in tree:
            try:
                times = member.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    return total


def payload_sha(paths: list[Path]) -> str:
    """SHA-256 of the files' payloads laid end to end (zstd frames decompressed in turn)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            reader = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True)
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def run_variant(name: str, root: Path, store: Path, rows: int, fmt: str) -> dict[str, Any]:
    """Run one variant in a fresh data directory; returns its figures."""
    prefix = f"mxbench-{secrets.token_hex(4)}:"
    deployment = Deployment(root / name, store, prefix)
    deployment.root.mkdir(parents=True)
    settings = deployment.settings()
    tasks = TaskStore.open(settings)
    request = build_request(dataset="ohlcv", format=fmt, compression="zstd")
    try:
        if name == "embedded":
            tasks.submit(WARM_UP, priority=1)  # runs first: the process's imports are paid
            task = tasks.submit(request)
            runner = [*CLI, "run-worker", "--until-idle", "--concurrency", "1"]
            env = {**deployment.env(), "MARKETEXPORT_EXECUTOR": "local"}
            with (deployment.root / "runner.log").open("wb") as log:
                started = subprocess.Popen(
                    runner, env=env, stdout=log, stderr=log, start_new_session=True
                )
            # CPU from the measured task's start: the runner's exports run in its threads.
            deadline = time.monotonic() + 120
            while tasks.get(task.id).started_at is None and time.monotonic() < deadline:
                time.sleep(0.01)  # (no poll(): wait4 below must reap the runner itself)
            cpu_start = cpu_seconds([started])
            _, status, usage = os.wait4(started.pid, 0)
            started.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime - cpu_start
        else:
            workers = 1 if name.startswith("celery-1") else 2
            for _ in range(workers):
                deployment.start("celery-worker", "--concurrency", "1", wait_for="ready:")
            warm = [dispatch(settings, tasks, tasks.submit(WARM_UP)) for _ in range(workers)]
            while not all(tasks.get(task.id).is_terminal for task in warm):
                time.sleep(0.05)
            cpu_start = cpu_seconds(deployment.processes)
            body: Any = request
            if "split" in name:
                body = split_request(request, parse_split("day", concat=name.endswith("join")))
            task = dispatch(settings, tasks, tasks.submit(body))
            while not tasks.get(task.id).is_terminal:
                time.sleep(0.05)
            cpu = cpu_seconds(deployment.processes) - cpu_start
        done = tasks.get(task.id)
        if done.state.value != "completed" or done.result is None:
            raise RuntimeError(f"{name}: task ended {done.state.value}: {done.error}")
        report = verify_export(Path(done.result["manifest_path"]))
        if not report.ok:
            raise RuntimeError(f"{name}: verify failed: {report.problems}")
        if "parts" in done.result and not name.endswith("join"):
            outputs = [Path(part["path"]) for part in done.result["parts"]]
        else:
            outputs = [Path(done.result["path"])]
        assert done.finished_at is not None and done.started_at is not None
        seconds = done.finished_at - done.started_at
        return {
            "variant": name,
            "seconds": seconds,
            "rows": done.result["rows"],
            "rows_per_s": rows / seconds,
            "cpu_s": cpu,
            "parts": len(done.result.get("parts", [])) or 1,
            "payload_sha256": payload_sha(outputs) if fmt == "jsonl" else None,
        }
    finally:
        deployment.stop()
        tasks.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)


# A one-minute export run before the measured one in every worker process, so that the
# first export's imports (pyarrow pulls in pandas, about 1.4 s) are outside the timing.
WARM_UP = build_request(dataset="ohlcv", format="jsonl", compression="zstd",
                        end=f"{T0_NS + 60 * 10**9}ns")  # fmt: skip
VARIANTS = ["embedded", "celery-1-whole", "celery-2-split", "celery-2-split-join"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--format",
        choices=["jsonl", "parquet"],
        default="jsonl",
        help="jsonl (with zstd; joinable) or parquet (zstd inside; one encoding thread per "
        "export, and no joined variant).",
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    variants = [v for v in VARIANTS if args.format == "jsonl" or not v.endswith("join")]

    root = Path(tempfile.mkdtemp(prefix="mx-distributed-"))
    try:
        store = root / "store.duckdb"
        build_store(store, args.rows)
        best: dict[str, dict[str, Any]] = {}
        for repeat in range(args.repeat):
            for name in variants:
                figures = run_variant(name, root / f"r{repeat}", store, args.rows, args.format)
                if name not in best or figures["seconds"] < best[name]["seconds"]:
                    best[name] = figures
        shas = {figures["payload_sha256"] for figures in best.values()}
        if len(shas) != 1 or any(figures["rows"] != args.rows for figures in best.values()):
            raise RuntimeError(f"the variants' payloads differ: {shas}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(best, indent=2))
        return 0
    base = best["embedded"]["seconds"]
    same = "every payload identical" if args.format == "jsonl" else "every row count equal"
    print(f"{args.rows:,} rows, {args.format} + zstd, {os.cpu_count()} cores, "
          f"best of {args.repeat}; {same}\n")  # fmt: skip
    print("| variant | parts | wall s | rows/s | CPU s | speed vs embedded |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in variants:
        figures = best[name]
        print(
            f"| {name} | {figures['parts']} | {figures['seconds']:.2f} | "
            f"{figures['rows_per_s']:,.0f} | {figures['cpu_s']:.1f} | "
            f"{base / figures['seconds']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
