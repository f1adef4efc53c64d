"""Store wrappers for runner tests (slow, counting and failing stores), a task watcher, and
the count of tasks queued in a data directory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from marketexport.config import load_settings
from marketexport.datasets import Dataset
from marketexport.errors import TransientStoreError
from marketexport.request import Filter
from marketexport.store.base import ScanStats
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.model import Task
from marketexport.tasks.store import TaskStore


class WrappedStore:
    """A read-only DuckDB store whose batches pass through ``on_batch`` (after a pause)."""

    def __init__(
        self,
        path: Path,
        *,
        pause_s: float = 0.0,
        on_batch: Callable[[pa.RecordBatch], None] | None = None,
        fail_stats: list[int] | None = None,
    ) -> None:
        self.inner = DuckDBStore(path, read_only=True, threads=1)
        self.pause_s = pause_s
        self.on_batch = on_batch
        # A shared countdown: while it is above zero, stats() raises a transient error.
        self.fail_stats = fail_stats

    def stats(self, spec: Dataset, filters: list[Filter]) -> ScanStats:
        if self.fail_stats is not None and self.fail_stats[0] > 0:
            self.fail_stats[0] -= 1
            raise TransientStoreError(f"the store {self.inner.path} is busy; will retry")
        return self.inner.stats(spec, filters)

    def scan(self, spec: Dataset, filters: list[Filter], columns: list[str], rows: int) -> Any:
        return _Reader(self, self.inner.scan(spec, filters, columns, rows))

    def insert(self, parts: Any) -> Any:
        raise AssertionError("runners never write to the data store")

    def close(self) -> None:
        self.inner.close()


class _Reader:
    def __init__(self, owner: WrappedStore, inner: Any) -> None:
        self._owner = owner
        self._inner = inner
        self.schema = inner.schema

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> pa.RecordBatch:
        batch = next(self._inner)
        if self._owner.pause_s:
            time.sleep(self._owner.pause_s)
        if self._owner.on_batch is not None:
            self._owner.on_batch(batch)
        return batch

    def close(self) -> None:
        self._inner.close()


class Watcher:
    """Polls a task from its own connection (as another process would) in a thread."""

    def __init__(self, where: Path | str, task_id: str, every_s: float = 0.002) -> None:
        self.store = TaskStore(where)
        self.task_id = task_id
        self.every_s = every_s
        self.seen: list[Task] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.seen.append(self.store.get(self.task_id))
            time.sleep(self.every_s)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.append(self.store.get(self.task_id))
        self.store.close()


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll until ``condition()`` holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def queued_tasks(data_dir: Path) -> int:
    """How many tasks the data directory's task store holds, in any state."""
    store = TaskStore.open(load_settings({"data_dir": data_dir}, environ={}))
    try:
        return len(store.list())
    finally:
        store.close()
