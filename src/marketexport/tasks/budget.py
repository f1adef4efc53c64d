"""The CPU budget: how many threads the store, the codecs and the running tasks share.

One number, ``Settings.cpu_threads`` (``cpu_fraction`` of the cores, at least one), is
shared out as follows:

- the shared DuckDB connection of a runner gets that many threads;
- each task's encode pool and codec get ``task_threads = max(1, budget // concurrency)``;
- at most ``slots = max(1, budget // task_threads)`` tasks work on a batch at a time: a task
  holds a slot from the moment it asks the store for a batch until it asks for the next
  one, so reading, converting, encoding, compressing and writing a batch all happen inside
  the slot. Slots are handed out first come, first served, so running tasks take turns
  batch by batch and none starves;
- Arrow's own thread pool is set to the budget while a runner runs.

With more tasks than slots, the extra tasks still hold their place (an open scan, a
temporary file) but wait for a slot, so the process never asks for more CPU than the
budget, however high the concurrency.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import pyarrow as pa

from ..datasets import Dataset
from ..request import Filter
from ..store import Store
from ..store.base import BatchStream, InsertResult, ScanStats


class FairSemaphore:
    """A counting semaphore that serves waiters in arrival order."""

    def __init__(self, permits: int) -> None:
        self._free = permits
        self._waiters: deque[threading.Event] = deque()
        self._lock = threading.Lock()
        self.in_use = 0
        self.peak_in_use = 0

    def acquire(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                self._note_taken()
                return
            turn = threading.Event()
            self._waiters.append(turn)
        # release() hands its permit straight to the first waiter and counts it.
        turn.wait()

    def release(self) -> None:
        with self._lock:
            self.in_use -= 1
            if self._waiters:
                self._note_taken()
                self._waiters.popleft().set()
            else:
                self._free += 1

    def _note_taken(self) -> None:
        self.in_use += 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)


class CpuBudget:
    """The threads exports may use together, divided among concurrent tasks."""

    def __init__(self, threads: int, concurrency: int) -> None:
        self.threads = max(1, int(threads))
        self.concurrency = max(1, int(concurrency))
        self.task_threads = max(1, self.threads // self.concurrency)
        self.slots = max(1, self.threads // self.task_threads)
        self.gate = FairSemaphore(self.slots)

    def __repr__(self) -> str:
        return (
            f"CpuBudget(threads={self.threads}, task_threads={self.task_threads}, "
            f"slots={self.slots})"
        )

    def gated(self, store: Store) -> GatedStore:
        """The store, with every batch read and processed inside a slot."""
        return GatedStore(store, self.gate)


class GatedStore:
    """A Store whose scans take a budget slot per batch (stats run inside a slot too)."""

    def __init__(self, inner: Store, gate: FairSemaphore) -> None:
        self.inner = inner
        self.gate = gate

    def stats(self, spec: Dataset, filters: list[Filter]) -> ScanStats:
        self.gate.acquire()
        try:
            return self.inner.stats(spec, filters)
        finally:
            self.gate.release()

    def distinct_values(self, spec: Dataset, column: str, filters: list[Filter]) -> list[str]:
        self.gate.acquire()
        try:
            return self.inner.distinct_values(spec, column, filters)
        finally:
            self.gate.release()

    def scan(
        self, spec: Dataset, filters: list[Filter], columns: list[str], batch_rows: int
    ) -> GatedReader:
        return GatedReader(self.inner.scan(spec, filters, columns, batch_rows), self.gate)

    def scan_lines(
        self, spec: Dataset, filters: list[Filter], columns: list[str], layout: str,
        batch_rows: int,
    ) -> GatedReader | None:  # fmt: skip
        """Finished text lines from a store that renders them (PostgreSQL), gated alike."""
        inner = getattr(self.inner, "scan_lines", None)
        lines = inner(spec, filters, columns, layout, batch_rows) if inner else None
        return None if lines is None else GatedReader(lines, self.gate)

    def insert(self, parts: Any) -> dict[str, InsertResult]:
        return self.inner.insert(parts)

    def close(self) -> None:
        """The inner store is shared; its owner closes it."""


class GatedReader:
    """Holds a slot from one batch request to the next; close() gives it back."""

    def __init__(self, inner: BatchStream, gate: FairSemaphore) -> None:
        self._inner = inner
        self._gate = gate
        self._holding = False
        self.schema = inner.schema

    def __iter__(self) -> GatedReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        # Give the slot back between batches so that waiting tasks get their turn.
        self._release()
        self._gate.acquire()
        self._holding = True
        try:
            return next(self._inner)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self._gate.release()

    def close(self) -> None:
        self._release()
        self._inner.close()


class ArrowThreads:
    """Set Arrow's CPU thread pool to the budget while a runner runs, then restore it."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._before: int | None = None

    def __enter__(self) -> ArrowThreads:
        self._before = pa.cpu_count()
        pa.set_cpu_count(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._before is not None:
            pa.set_cpu_count(self._before)
