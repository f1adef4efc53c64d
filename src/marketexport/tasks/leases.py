"""The runner's side of the task store: claim, lease, progress, outcome and recovery.

A worker (the local runner or a Celery worker) takes a task with a compare-and-set
UPDATE from ``pending`` to ``running`` that records it as the lease owner until a time it
keeps pushing forward (the heartbeat). Every later change names the state and the owner
it expects, so a worker that lost its lease changes nothing. A lease that ran out means
the runner died or hung: :meth:`LeaseTransitions.recover_expired` settles such tasks.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from .database import Connection, Row
from .model import Task, TaskControl, TaskError, TaskProgress, TaskState
from .schema import END_LEASE, task_from_row

logger = logging.getLogger("marketexport.tasks.store")

RUNNING, PENDING = TaskState.RUNNING.value, TaskState.PENDING.value


class LeaseTransitions(ABC):
    """State changes made by whoever runs tasks; mixed into TaskStore."""

    clock: Callable[[], float]

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction."""

    @abstractmethod
    def read(self, sql: str, params: Any = ()) -> list[Row]:
        """Every row of one read query."""

    @abstractmethod
    def _update(self, sql: str, params: dict[str, Any]) -> Task | None:
        """Run one UPDATE ... RETURNING in a transaction; the changed task or None."""

    def claim_next(self, worker_id: str, lease_s: float) -> Task | None:
        """Take the next due pending task (priority, then submission order) for a worker."""
        return self._claim(worker_id, lease_s, None)

    def claim(self, task_id: str, worker_id: str, lease_s: float) -> Task | None:
        """Take one given task if it is pending and due (a Celery worker's way in).

        A copy of a task that another worker holds gets None and must exit without work.
        """
        self.recover_expired(task_id=task_id)
        return self._claim(worker_id, lease_s, task_id)

    def _claim(self, worker_id: str, lease_s: float, task_id: str | None) -> Task | None:
        now = self.clock()
        pick = (
            "SELECT seq FROM tasks WHERE state = 'pending' "
            "AND (not_before IS NULL OR not_before <= :now) "
            + ("AND id = :id " if task_id else "")
            + "ORDER BY priority DESC, seq LIMIT 1"
        )
        task = self._update(
            "UPDATE tasks SET state = 'running', attempts = attempts + 1, "
            "lease_owner = :worker, lease_expires_at = :now + :lease, heartbeat_at = :now, "
            "started_at = :now, finished_at = NULL, updated_at = :now, not_before = NULL, "
            "rows_done = 0, rows_total = NULL, bytes_written = 0, rows_per_s = NULL, "
            f"eta_s = NULL WHERE seq = ({pick}) AND state = 'pending'",
            {"worker": worker_id, "now": now, "lease": lease_s, "id": task_id},
        )
        if task is not None:
            logger.info(
                "task %s started attempt=%d/%d worker=%s export=%s",
                task.id,
                task.attempts,
                task.max_attempts,
                worker_id,
                task.label,
                extra={"task_id": task.id},
            )
        return task

    def heartbeat(self, task_id: str, worker_id: str, lease_s: float) -> bool:
        """Extend the worker's lease on a running task; False when it no longer holds it."""
        return not self.heartbeat_many(worker_id, [task_id], lease_s)

    def heartbeat_many(self, worker_id: str, task_ids: Iterable[str], lease_s: float) -> set[str]:
        """Extend the leases on several running tasks at once; returns those it lost."""
        now = self.clock()
        return self._each_running(
            "UPDATE tasks SET lease_expires_at = :now + :lease, heartbeat_at = :now",
            worker_id,
            {task_id: {"now": now, "lease": lease_s} for task_id in task_ids},
        )

    def report_progress(self, task_id: str, worker_id: str, progress: TaskProgress) -> bool:
        """Record the running attempt's progress; False when the worker lost the task."""
        return not self.report_progress_many(worker_id, {task_id: progress})

    def report_progress_many(self, worker_id: str, progress: dict[str, TaskProgress]) -> set[str]:
        """Record the progress of several attempts in one transaction; returns tasks lost."""
        now = self.clock()
        return self._each_running(
            "UPDATE tasks SET rows_done = :rows_done, rows_total = :rows_total, "
            "bytes_written = :bytes_written, rows_per_s = :rows_per_s, eta_s = :eta_s, "
            "updated_at = :now",
            worker_id,
            {task_id: {**done.to_dict(), "now": now} for task_id, done in progress.items()},
        )

    def _each_running(
        self, update: str, worker_id: str, params: dict[str, dict[str, Any]]
    ) -> set[str]:
        # One transaction (one fsync) for all of a runner's tasks, however many run.
        lost: set[str] = set()
        if not params:
            return lost
        sql = update + " WHERE id = :id AND state = 'running' AND lease_owner = :worker"
        with self.transaction() as con:
            for task_id, values in params.items():
                if con.execute(sql, {**values, "id": task_id, "worker": worker_id}).rowcount == 0:
                    lost.add(task_id)
        return lost

    def control(self, task_id: str, worker_id: str) -> TaskControl:
        """Whether the worker still holds the task and whether a cancel was asked for."""
        rows = self.read(
            "SELECT state, lease_owner, cancel_requested FROM tasks WHERE id = ?", (task_id,)
        )
        if not rows:
            return TaskControl(lease_held=False, cancel_requested=False)
        held = rows[0]["state"] == RUNNING and rows[0]["lease_owner"] == worker_id
        return TaskControl(lease_held=held, cancel_requested=bool(rows[0]["cancel_requested"]))

    def complete(
        self, task_id: str, worker_id: str, result: dict[str, Any], progress: TaskProgress
    ) -> Task | None:
        """running -> completed with the attempt's result; None when the lease was lost."""
        now = self.clock()
        task = self._update(
            "UPDATE tasks SET state = 'completed', result = :result, error = NULL, "
            "rows_done = :rows_done, rows_total = :rows_total, bytes_written = :bytes_written, "
            "rows_per_s = :rows_per_s, eta_s = 0, finished_at = :now, updated_at = :now, "
            f"{END_LEASE} WHERE id = :id AND state = 'running' AND lease_owner = :worker",
            {
                **progress.to_dict(),
                "result": json.dumps(result, default=str),
                "id": task_id,
                "worker": worker_id,
                "now": now,
            },
        )
        if task is not None:
            logger.info(
                "task %s succeeded rows=%d bytes=%d elapsed_s=%.2f",
                task.id,
                task.progress.rows_done,
                task.progress.bytes_written,
                task.duration_s or 0.0,
                extra={"task_id": task.id},
            )
        return task

    def fail(
        self,
        task_id: str,
        worker_id: str,
        error: TaskError,
        *,
        retry_at: float | None = None,
        exc_info: BaseException | None = None,
    ) -> Task | None:
        """End a failed attempt: back to pending until ``retry_at``, or failed for good."""
        now = self.clock()
        target = PENDING if retry_at is not None else TaskState.FAILED.value
        task = self._update(
            "UPDATE tasks SET state = :target, error = :error, updated_at = :now, "
            "finished_at = CASE WHEN :target = 'failed' THEN :now END, "
            "lease_expires_at = NULL, not_before = :retry_at "
            "WHERE id = :id AND state = 'running' AND lease_owner = :worker",
            {
                "target": target,
                "error": json.dumps(error.to_dict()),
                "now": now,
                "retry_at": retry_at,
                "id": task_id,
                "worker": worker_id,
            },
        )
        if task is None:
            return None
        if retry_at is not None:
            logger.warning(
                "task %s retrying attempt=%d/%d in %.1fs after %s: %s",
                task.id,
                task.attempts,
                task.max_attempts,
                retry_at - now,
                error.kind,
                error.message,
                extra={"task_id": task.id},
            )
        else:
            logger.error(
                "task %s failed attempt=%d/%d %s: %s",
                task.id,
                task.attempts,
                task.max_attempts,
                error.kind,
                error.message,
                extra={"task_id": task.id},
                exc_info=exc_info,
            )
        return task

    def mark_cancelled(self, task_id: str, worker_id: str) -> Task | None:
        """running -> cancelled once the attempt has stopped and removed its output."""
        now = self.clock()
        task = self._update(
            "UPDATE tasks SET state = 'cancelled', finished_at = :now, updated_at = :now, "
            f"{END_LEASE} WHERE id = :id AND state = 'running' AND lease_owner = :worker",
            {"id": task_id, "worker": worker_id, "now": now},
        )
        if task is not None:
            logger.info(
                "task %s cancelled rows_done=%d",
                task.id,
                task.progress.rows_done,
                extra={"task_id": task.id},
            )
        return task

    def release(self, task_id: str, worker_id: str) -> Task | None:
        """running -> pending when a runner stops; the interrupted attempt is not counted."""
        task = self._update(
            "UPDATE tasks SET state = 'pending', "
            "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
            f"updated_at = :now, {END_LEASE} "
            "WHERE id = :id AND state = 'running' AND lease_owner = :worker",
            {"id": task_id, "worker": worker_id, "now": self.clock()},
        )
        if task is not None:
            logger.info(
                "task %s queued again: runner %s is stopping",
                task.id,
                worker_id,
                extra={"task_id": task.id},
            )
        return task

    def recover_expired(self, *, task_id: str | None = None) -> list[Task]:
        """Settle running tasks whose lease ran out (their runner died or hung).

        A cancel asked for meanwhile is honoured (cancelled); with attempts left the task
        goes back to pending; otherwise it fails. Returns the tasks as they now are.
        """
        now = self.clock()
        lost = TaskError(
            "the runner of the previous attempt stopped renewing its lease (it died or hung)",
            kind="RunnerLost",
            retryable=True,
        )
        only = "AND id = :id" if task_id else ""
        with self.transaction() as con:
            rows = con.execute(
                "UPDATE tasks SET updated_at = :now, lease_expires_at = NULL, "
                "state = CASE WHEN cancel_requested = 1 THEN 'cancelled' "
                "WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END, "
                "finished_at = CASE WHEN cancel_requested = 1 OR attempts >= max_attempts "
                "THEN :now END, error = CASE WHEN cancel_requested = 1 THEN error "
                "ELSE :error END "
                f"WHERE state = 'running' AND lease_expires_at < :now {only} RETURNING *",
                {"now": now, "error": json.dumps(lost.to_dict()), "id": task_id},
            ).fetchall()
        tasks = [task_from_row(row) for row in rows]
        for task in tasks:
            how = {
                TaskState.CANCELLED: "cancelled: the cancel asked while its runner was gone",
                TaskState.FAILED: "failed: its runner was lost and no attempts are left",
                TaskState.PENDING: "retrying: its runner stopped renewing the lease",
            }[task.state]
            logger.warning(
                "task %s %s runner=%s attempt=%d/%d",
                task.id,
                how,
                task.lease_owner,
                task.attempts,
                task.max_attempts,
                extra={"task_id": task.id},
            )
        return tasks
