"""Statistics of the task store: counts per state, the queue, totals and a recent window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import STATES
from .store import TaskStore

DEFAULT_WINDOW_S = 24 * 3600.0


@dataclass(frozen=True)
class TaskStats:
    """Counts over every task, and outcomes of the tasks that ended within the window."""

    by_state: dict[str, int]
    queue_length: int
    due_now: int
    running: int
    rows_exported: int
    bytes_exported: int
    retries: int
    window_s: float
    window_completed: int
    window_failed: int
    window_cancelled: int
    window_rows: int
    window_bytes: int
    mean_duration_s: float | None
    failure_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_state": self.by_state,
            "queue_length": self.queue_length,
            "due_now": self.due_now,
            "running": self.running,
            "rows_exported": self.rows_exported,
            "bytes_exported": self.bytes_exported,
            "retries": self.retries,
            "window": {
                "seconds": self.window_s,
                "completed": self.window_completed,
                "failed": self.window_failed,
                "cancelled": self.window_cancelled,
                "rows": self.window_rows,
                "bytes": self.window_bytes,
                "mean_duration_s": self.mean_duration_s,
                "failure_rate": self.failure_rate,
            },
        }


def task_stats(store: TaskStore, window_s: float = DEFAULT_WINDOW_S) -> TaskStats:
    """Compute the statistics in a few aggregate queries.

    ``failure_rate`` is failed / (completed + failed) among tasks that ended within the
    window (cancelled tasks are left out: a person stopped them); None when none ended.
    ``mean_duration_s`` is the mean run time of the last attempt of completed tasks.
    ``retries`` counts attempts beyond the first over all tasks.
    """
    now = store.clock()
    by_state = dict.fromkeys(STATES, 0)
    for state, count in store.read("SELECT state, count(*) FROM tasks GROUP BY state"):
        by_state[state] = int(count)
    totals = store.read(
        "SELECT coalesce(sum(CASE WHEN state = 'completed' THEN rows_done END), 0), "
        "coalesce(sum(CASE WHEN state = 'completed' THEN bytes_written END), 0), "
        "coalesce(sum(CASE WHEN attempts > 1 THEN attempts - 1 END), 0), "
        "coalesce(sum(CASE WHEN state = 'pending' AND (not_before IS NULL OR not_before <= ?) "
        "THEN 1 END), 0) "
        "FROM tasks",
        (now,),
    )[0]
    window = store.read(
        "SELECT coalesce(sum(CASE WHEN state = 'completed' THEN 1 END), 0), "
        "coalesce(sum(CASE WHEN state = 'failed' THEN 1 END), 0), "
        "coalesce(sum(CASE WHEN state = 'cancelled' THEN 1 END), 0), "
        "coalesce(sum(CASE WHEN state = 'completed' THEN rows_done END), 0), "
        "coalesce(sum(CASE WHEN state = 'completed' THEN bytes_written END), 0), "
        "avg(CASE WHEN state = 'completed' THEN finished_at - started_at END) "
        "FROM tasks WHERE finished_at IS NOT NULL AND finished_at >= ?",
        (now - window_s,),
    )[0]
    completed, failed = int(window[0]), int(window[1])
    ended = completed + failed
    return TaskStats(
        by_state=by_state,
        queue_length=by_state["pending"],
        due_now=int(totals[3]),
        running=by_state["running"],
        rows_exported=int(totals[0]),
        bytes_exported=int(totals[1]),
        retries=int(totals[2]),
        window_s=float(window_s),
        window_completed=completed,
        window_failed=failed,
        window_cancelled=int(window[2]),
        window_rows=int(window[3]),
        window_bytes=int(window[4]),
        mean_duration_s=None if window[5] is None else round(float(window[5]), 3),
        failure_rate=None if ended == 0 else round(failed / ended, 4),
    )
