"""Task statistics: counts, queue, totals, mean duration and failure rate in a window."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.request import build_request
from marketexport.tasks.model import TaskError, TaskProgress
from marketexport.tasks.stats import task_stats
from marketexport.tasks.store import TaskStore

REQUEST = build_request(dataset="ohlcv", format="csv")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def run_one(store: TaskStore, clock: Clock, seconds: float, rows: int, ok: bool) -> None:
    task = store.claim_next("w", 60)
    assert task is not None
    clock.now += seconds
    if ok:
        store.complete(task.id, "w", {"path": "f"}, TaskProgress(rows, rows, rows * 10))
    else:
        store.fail(task.id, "w", TaskError("disk gone", "SinkError", False))


def test_stats_sum_up_states_totals_and_the_window(task_store_where: Path | str) -> None:
    clock = Clock()
    store = TaskStore(task_store_where, clock=clock)
    for _ in range(7):
        store.submit(REQUEST)
    run_one(store, clock, 100, 1000, ok=True)  # ends before the window
    clock.now += 7200
    run_one(store, clock, 2, 30, ok=True)
    run_one(store, clock, 4, 50, ok=True)
    run_one(store, clock, 9, 0, ok=False)
    store.claim_next("w", 60)
    store.request_cancel(store.list(state=None)[0].id)  # the newest, still pending

    stats = task_stats(store, window_s=3600)

    assert stats.by_state == {
        "pending": 1, "running": 1, "completed": 3, "failed": 1, "cancelled": 1,
    }  # fmt: skip
    assert (stats.queue_length, stats.due_now, stats.running) == (1, 1, 1)
    assert (stats.rows_exported, stats.bytes_exported) == (1080, 10800)
    assert (stats.window_completed, stats.window_failed, stats.window_cancelled) == (2, 1, 1)
    assert stats.window_rows == 80
    assert stats.mean_duration_s == pytest.approx(3.0)
    assert stats.failure_rate == pytest.approx(1 / 3, abs=1e-4)
    assert stats.to_dict()["window"]["failure_rate"] == stats.failure_rate
    store.close()


def test_stats_of_an_empty_store_have_no_rates(task_store_where: Path | str) -> None:
    store = TaskStore(task_store_where)
    stats = task_stats(store)
    store.close()

    assert stats.queue_length == 0 and stats.rows_exported == 0
    assert stats.mean_duration_s is None and stats.failure_rate is None
