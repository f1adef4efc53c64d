"""Real Celery workers for tests: started as `marketexport celery-worker` processes over Redis.

Every test run gets its own Redis key prefix and queue name, so runs can share the server;
only keys with that prefix are deleted afterwards. Workers run in their own process group
and are stopped by their own pid (the group's leader).

A run on "machines apart" gives each worker a data directory of its own, with its own
copy of the data store, so the workers share only Redis, the PostgreSQL task store and
the export directory, as workers on separate machines would.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from marketexport.config import Settings, load_settings
from marketexport.request import ExportRequest
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.executor import dispatch
from marketexport.tasks.messages import deliveries, ensure_schema
from marketexport.tasks.model import Task
from marketexport.tasks.store import TaskStore
from tests.conftest import REPO

REDIS_URL = "redis://127.0.0.1:6379/0"
# The Redis database of the runs on machines apart (no other test uses it).
APART_REDIS_URL = "redis://127.0.0.1:6379/6"
CLI = [sys.executable, "-c", "from marketexport.cli import run; run()"]
T0_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
DAY_NS = 86_400_000_000_000


def redis_client(url: str = REDIS_URL) -> Any:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"no Redis server at {url}: {exc}")
    return client


def delete_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete this run's keys (and only them)."""
    client = redis_client(url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def build_days(path: Path, days: float, step_s: int, symbols: tuple[str, ...]) -> int:
    """Candles every ``step_s`` seconds for each symbol over ``days`` days from T0; rows."""
    DuckDBStore(path).close()
    per_symbol = int(days * 86_400 / step_s)
    con = duckdb.connect(str(path))
    try:
        for symbol in symbols:
            con.execute(
                "INSERT INTO ohlcv SELECT 'binance', ?, '1m', 'trade', "
                f"make_timestamp_ns({T0_NS} + i * {step_s * 1_000_000_000}), "
                "CAST(40000 + (i % 997) * 0.01 AS DECIMAL(38, 18)), "
                "CAST(40010.5 AS DECIMAL(38, 18)), CAST(0.00001234 AS DECIMAL(38, 18)), "
                "CAST(75036192.45844001 AS DECIMAL(38, 18)), "
                "CAST((i % 1000) * 0.00001 AS DECIMAL(38, 18)), NULL, i % 5000, NULL, NULL "
                "FROM range(?) t(i)",
                [symbol, per_symbol],
            ).fetchall()
    finally:
        con.close()
    return per_symbol * len(symbols)


@dataclass
class CeleryRun:
    """One test's deployment: data dir, store, Redis prefix, queue and its workers.

    With ``task_store`` (a postgresql:// URL) and ``apart``, each worker gets a data
    directory of its own (a machine); ``data_dir`` is then the submitter's, and its
    ``exports`` folder the export directory that every machine shares.
    """

    data_dir: Path
    store: Path
    logs: Path
    prefix: str = field(default_factory=lambda: f"mxtest-{secrets.token_hex(6)}:")
    env_extra: dict[str, str] = field(default_factory=dict)
    task_store: str | None = None
    apart: bool = False
    redis_url: str = REDIS_URL
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    other: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def queue(self) -> str:
        return self.prefix.rstrip(":") + "-exports"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETEXPORT_")}
        env.update(
            MARKETEXPORT_DATA_DIR=str(self.data_dir),
            MARKETEXPORT_STORE=str(self.store),
            MARKETEXPORT_EXECUTOR="celery",
            MARKETEXPORT_REDIS_URL=self.redis_url,
            MARKETEXPORT_CELERY_KEY_PREFIX=self.prefix,
            MARKETEXPORT_CELERY_QUEUE=self.queue,
            MARKETEXPORT_CELERY_SWEEP_S="1",
            MARKETEXPORT_CELERY_REDISPATCH_S="5",
            MARKETEXPORT_TASK_LEASE_S="3",
            MARKETEXPORT_TASK_RETRY_DELAY_S="1",
            MARKETEXPORT_BATCH_ROWS="20000",
            PYTHONPATH=str(REPO),
        )
        if self.task_store is not None:
            env["MARKETEXPORT_TASK_STORE"] = self.task_store
        if self.apart:
            env["MARKETEXPORT_EXPORT_DIR"] = str(self.data_dir / "exports")
        env.update(self.env_extra)
        env.update(extra)
        return env

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            key[len("MARKETEXPORT_") :].lower(): value
            for key, value in self.env().items()
            if key.startswith("MARKETEXPORT_")
        }
        values.update(overrides)
        return load_settings(values, environ={})

    def tasks(self) -> TaskStore:
        store = TaskStore(self.task_store or self.data_dir / "tasks.sqlite3")
        ensure_schema(store)
        return store

    def start_worker(self, *args: str, name: str | None = None) -> subprocess.Popen[bytes]:
        """Start `marketexport celery-worker` (concurrency 1) and wait until it is ready."""
        index = len(self.workers) + len(self.other)
        log = self.logs / f"{name or f'worker{index}'}.log"
        command = [*CLI, "celery-worker", "--concurrency", "1", "--logfile", str(log), *args]
        process = self._spawn(command, self.logs / f"worker{index}.out", self.machine(index))
        self.workers.append(process)
        wait_until(lambda: log.exists() and "ready:" in log.read_text(), 60, process)
        return process

    def start_beat(self, *args: str) -> subprocess.Popen[bytes]:
        index = len(self.workers) + len(self.other)
        log = self.logs / f"beat{index}.log"
        command = [*CLI, "celery-beat", "--logfile", str(log), *args]
        process = self._spawn(command, self.logs / f"beat{index}.out")
        self.other.append(process)
        return process

    def machine(self, index: int) -> dict[str, str]:
        """The environment of a worker's own machine: its data directory and data store."""
        if not self.apart:
            return {}
        data_dir = self.data_dir.parent / f"machine{index}"
        store = data_dir / "store.duckdb"
        if not store.exists():
            data_dir.mkdir(parents=True)
            shutil.copyfile(self.store, store)
        return {"MARKETEXPORT_DATA_DIR": str(data_dir), "MARKETEXPORT_STORE": str(store)}

    def machine_dirs(self) -> list[Path]:
        """The data directories of the workers' machines (none on one machine)."""
        return sorted(self.data_dir.parent.glob("machine*")) if self.apart else []

    def _spawn(
        self, command: list[str], out: Path, extra: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as handle:
            return subprocess.Popen(
                command,
                env=self.env(**(extra or {})),
                stdout=handle,
                stderr=handle,
                start_new_session=True,
            )

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker's whole process group (its pool and helper die with it)."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def stop_all(self) -> None:
        for process in [*self.workers, *self.other]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, *self.other]:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def submit(self, request: ExportRequest | dict[str, Any], **kwargs: Any) -> Task:
        """Queue a task as the CLI does: task store first, then the message."""
        tasks = self.tasks()
        try:
            return dispatch(self.settings(), tasks, tasks.submit(request, **kwargs))
        finally:
            tasks.close()

    def log_text(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.logs.glob("*.log")))


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process {process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.05)


def pipeline_starts(tasks: TaskStore, task_id: str) -> int:
    return sum(1 for row in deliveries(tasks, task_id) if row["pipeline_started_at"] is not None)


def worker_pid_of(lease_owner: str) -> int:
    """The Celery worker (the pool's parent) of a lease owner host:pid:random."""
    child = int(lease_owner.rsplit(":", 2)[1])
    stat = Path(f"/proc/{child}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def part_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.part"))
