"""The CPU budget: fair slots, the division of threads, and gated scans."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from marketexport.config import Settings
from marketexport.datasets import OHLCV
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.budget import ArrowThreads, CpuBudget, FairSemaphore, GatedStore
from marketexport.tasks.model import TaskState
from marketexport.tasks.runner import Runner
from marketexport.tasks.store import TaskStore
from tests.tasks.conftest import MINUTE_NS, T0_NS
from tests.tasks.helpers import WrappedStore


@pytest.mark.parametrize(
    ("threads", "concurrency", "task_threads", "slots"),
    [(1, 10, 1, 1), (8, 4, 2, 4), (8, 3, 2, 4), (12, 10, 1, 12), (3, 1, 3, 1)],
)
def test_budget_divides_threads_among_tasks(
    threads: int, concurrency: int, task_threads: int, slots: int
) -> None:
    budget = CpuBudget(threads, concurrency)

    assert (budget.task_threads, budget.slots) == (task_threads, slots)
    assert budget.task_threads * budget.slots <= threads


def test_fair_semaphore_serves_waiters_in_arrival_order() -> None:
    gate = FairSemaphore(1)
    gate.acquire()
    served: list[int] = []
    threads = []

    def take_turn(i: int) -> None:
        gate.acquire()
        served.append(i)
        gate.release()

    for i in range(5):
        thread = threading.Thread(target=take_turn, args=(i,))
        thread.start()
        threads.append(thread)
        while len(gate._waiters) < i + 1:  # wait until this one queues up
            time.sleep(0.001)

    gate.release()
    for thread in threads:
        thread.join()

    assert served == [0, 1, 2, 3, 4]
    assert gate.peak_in_use == 1 and gate.in_use == 0


def test_gated_scan_holds_a_slot_per_batch_and_gives_it_back(
    task_settings: Settings,
) -> None:
    inner = DuckDBStore(Path(task_settings.store_url), read_only=True)
    budget = CpuBudget(1, 2)
    store = budget.gated(inner)
    filters = build_request(dataset="ohlcv", format="csv").filters()
    first = store.scan(OHLCV, filters, ["time"], 1000)
    second = store.scan(OHLCV, filters, ["time"], 1000)

    next(first)
    blocked = threading.Thread(target=lambda: next(second))
    blocked.start()
    blocked.join(0.2)
    was_blocked = blocked.is_alive()
    first.close()
    blocked.join(5)
    second.close()
    inner.close()

    assert was_blocked and not blocked.is_alive()
    assert budget.gate.in_use == 0
    assert isinstance(store, GatedStore)


class _LineStore:
    """A store that renders finished lines itself, as the PostgreSQL store does for CSV."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def scan_lines(self, spec, filters, columns, layout, batch_rows):  # type: ignore[no-untyped-def]
        self.asked.append(layout)
        batch = pa.record_batch({"line": pa.array(["a,1\n", "b,2\n"])})
        return _Stream(batch)


class _Stream:
    def __init__(self, batch: pa.RecordBatch) -> None:
        self.schema = batch.schema
        self._batches = iter([batch])

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def close(self) -> None:
        return None


def test_gated_store_passes_rendered_lines_on_through_the_gate(
    task_settings: Settings,
) -> None:
    budget = CpuBudget(1, 1)
    lines_store = _LineStore()
    gated = budget.gated(lines_store)  # type: ignore[arg-type]
    lines = gated.scan_lines(OHLCV, [], ["time"], "csv", 1000)
    assert lines is not None and lines_store.asked == ["csv"]
    assert next(lines).column(0).to_pylist() == ["a,1\n", "b,2\n"]
    assert budget.gate.in_use == 1  # the batch is being worked on inside a slot
    lines.close()
    assert budget.gate.in_use == 0

    plain = DuckDBStore(Path(task_settings.store_url), read_only=True)
    assert budget.gated(plain).scan_lines(OHLCV, [], ["time"], "csv", 1000) is None
    plain.close()


@pytest.mark.slow
def test_running_tasks_never_work_on_more_batches_than_slots(
    task_settings: Settings, tasks: TaskStore
) -> None:
    one_thread = replace(task_settings, cpu_fraction=1 / (os.cpu_count() or 1))
    end = str((T0_NS + 4000 * MINUTE_NS) // 1_000_000)
    for _ in range(4):
        tasks.submit(build_request(dataset="ohlcv", format="csv", end=end))
    busy = [0, 0]
    lock = threading.Lock()

    def on_batch(batch: pa.RecordBatch) -> None:
        # Runs inside the slot: count how many tasks are in here at once.
        with lock:
            busy[0] += 1
            busy[1] = max(busy[1], busy[0])
        time.sleep(0.002)
        with lock:
            busy[0] -= 1

    path = Path(task_settings.store_url)
    runner = Runner(
        one_thread, tasks, concurrency=4, poll_s=0.02,
        open_data_store=lambda: WrappedStore(path, on_batch=on_batch),
    )  # fmt: skip

    runner.run(until_idle=True)

    assert tasks.count(TaskState.COMPLETED) == 4
    assert runner.budget.slots == 1
    assert busy[1] == 1
    assert runner.budget.gate.peak_in_use <= runner.budget.slots


def test_arrow_threads_are_set_while_running_and_restored() -> None:
    before = pa.cpu_count()

    with ArrowThreads(1):
        inside = pa.cpu_count()

    assert inside == 1 and pa.cpu_count() == before
