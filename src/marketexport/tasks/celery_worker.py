"""Inside a Celery worker process: claim a task, keep its lease, run one attempt, follow up.

Each pool process has one :class:`ProcessWorker`, made on its first message (after the
fork, so no SQLite connection ever crosses a fork). It runs exactly the attempt code of
the local runner (:func:`~marketexport.tasks.attempt.run_attempt`) and adds only what a
message-driven worker needs:

- a heartbeat thread that renews the task's lease while the attempt runs, so a worker
  that dies is noticed when its lease runs out and by nothing else;
- a record of every message received and of every pipeline start (``tasks.messages``);
- after a retryable failure, a message due when the retry delay ends;
- after a part of a split export ends, a look at its parent (``tasks.split``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import NotFoundError
from ..export.pipeline import ExportResult, run_export
from ..store import open_store
from .attempt import AttemptContext, AttemptToken, clear_dir, run_attempt
from .budget import ArrowThreads, CpuBudget
from .executor import send_message
from .messages import ensure_schema, record_end, record_pipeline_start, record_received
from .model import Task, TaskState
from .runner import SharedStore, new_worker_id
from .store import TaskStore
from .tasklog import task_context

logger = logging.getLogger(__name__)

# Seconds between two progress writes of an attempt to the task store.
PROGRESS_WRITE_S = 0.5


@dataclass
class WorkerConfig:
    """What the celery-worker command hands to its pool processes (inherited at fork)."""

    settings: Settings
    concurrency: int = 1


_config: WorkerConfig | None = None
_worker: ProcessWorker | None = None


def configure_worker(settings: Settings, concurrency: int) -> None:
    """Called once by ``marketexport celery-worker`` before the pool starts."""
    global _config, _worker
    _config = WorkerConfig(settings, concurrency)
    _worker = None


def process_worker() -> ProcessWorker:
    """This process's worker, made on first use (and again in a freshly forked process)."""
    global _worker
    if _config is None:
        raise RuntimeError(
            "marketexport's Celery task runs only under `marketexport celery-worker`"
        )
    if _worker is None or _worker.pid != os.getpid():
        _worker = ProcessWorker(_config.settings, _config.concurrency)
    return _worker


class CountingToken(AttemptToken):
    """The attempt's cancel token, which also notes when it checked the task store.

    The pipeline asks it once per batch. ``last_clear_check_at`` is when the last check
    that found no cancel began; a cancel committed after that is seen by the next check.
    """

    def __init__(self, tasks: TaskStore, task_id: str, worker_id: str) -> None:
        super().__init__(tasks, task_id, worker_id)
        self.checks = 0
        self.last_clear_check_at: float | None = None
        self.cancel_seen_at: float | None = None

    def is_cancelled(self) -> bool:
        began = time.time()
        cancelled = super().is_cancelled()
        self.checks += 1
        if not cancelled:
            self.last_clear_check_at = began
        elif self.cancel_seen and self.cancel_seen_at is None:
            self.cancel_seen_at = began
        return cancelled

    def figures(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "last_clear_check_at": self.last_clear_check_at,
            "cancel_seen_at": self.cancel_seen_at,
        }


class Heartbeat:
    """Renews a task's lease every third of the lease time while the block runs."""

    def __init__(
        self, tasks: TaskStore, task_id: str, worker_id: str, lease_s: float, token: Any = None
    ) -> None:
        self._tasks = tasks
        self._task_id = task_id
        self._worker_id = worker_id
        self._lease_s = lease_s
        self._token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        with task_context(self._task_id):
            while not self._stop.wait(self._lease_s / 3):
                try:
                    held = self._tasks.heartbeat(self._task_id, self._worker_id, self._lease_s)
                except Exception:  # a busy store: the next beat tries again
                    logger.warning("heartbeat failed; will retry", exc_info=True)
                    continue
                if not held:
                    if self._token is not None:
                        self._token.lost = True
                    return


class ProcessWorker:
    """Claims and runs tasks for one Celery pool process."""

    def __init__(self, settings: Settings, concurrency: int) -> None:
        self.pid = os.getpid()
        # The pool processes of one worker share the machine's CPU budget.
        self.settings = replace(settings, cpu_fraction=settings.cpu_fraction / concurrency)
        self.tasks = TaskStore.open(self.settings)
        ensure_schema(self.tasks)
        self.worker_id = new_worker_id()
        self.lease_s = float(self.settings.task_lease_s)
        self.budget = CpuBudget(self.settings.cpu_threads, 1)
        shared = SharedStore(lambda: open_store(self.settings, read_only=True))
        self.context = AttemptContext(
            tasks=self.tasks,
            worker_id=self.worker_id,
            export_root=Path(self.settings.export_path),
            budget=self.budget,
            acquire_store=shared.acquire,
            release_store=shared.release,
            batch_rows=self.settings.batch_rows,
            retry_delay_s=float(self.settings.task_retry_delay_s),
            progress_write_s=PROGRESS_WRITE_S,
            settings=self.settings,
        )

    def claim(
        self, task_id: str, message_id: str | None, redelivered: bool
    ) -> tuple[Task, int] | None:
        """Take the task for this process, or None when the message must exit without work."""
        with task_context(task_id):
            # A dead worker's attempt is settled first; if that ends the task, its files go.
            for settled in self.tasks.recover_expired(task_id=task_id):
                if settled.is_terminal:
                    clear_dir(settled.output_dir(self.context.export_root))
            task = self.tasks.claim(task_id, self.worker_id, self.lease_s)
            delivery = record_received(
                self.tasks,
                task_id=task_id,
                message_id=message_id,
                worker_id=self.worker_id,
                redelivered=redelivered,
                claimed=task is not None,
                attempt=task.attempts if task is not None else None,
            )
            if task is None:
                self._log_skipped(task_id, message_id, redelivered)
                return None
            return task, delivery

    def _log_skipped(self, task_id: str, message_id: str | None, redelivered: bool) -> None:
        try:
            current = self.tasks.get(task_id)
        except NotFoundError:
            logger.warning("task %s: message %s names no task; dropped", task_id, message_id)
            return
        if current.state == TaskState.RUNNING:
            why = f"running under {current.lease_owner}"
        elif current.state == TaskState.PENDING:
            why = "pending but not due yet"
        else:
            why = current.state.value
        logger.info(
            "task %s: %smessage %s exits without work: the task is %s",
            task_id, "redelivered " if redelivered else "", message_id, why,
        )  # fmt: skip

    def run(self, task: Task, delivery: int) -> None:
        """Run the claimed task's attempt (or a split export's planning) and follow up."""
        from . import split

        with task_context(task.id), ArrowThreads(self.budget.threads):
            if split.is_split(task):
                outcome = split.start_parts(self, task)
                record_end(self.tasks, delivery, outcome, {})
                return
            token = CountingToken(self.tasks, task.id, self.worker_id)
            context = replace(self.context, export=partial(self._export, delivery))
            with Heartbeat(self.tasks, task.id, self.worker_id, self.lease_s, token):
                run_attempt(context, task, token)
            after = self.tasks.get(task.id)
            record_end(self.tasks, delivery, after.state.value, token.figures())
            self._follow_up(after)

    def _export(self, delivery: int, *args: Any, **kwargs: Any) -> ExportResult:
        record_pipeline_start(self.tasks, delivery)
        return run_export(*args, **kwargs)

    def _follow_up(self, task: Task) -> None:
        from . import split

        if task.state == TaskState.PENDING:
            # A retryable failure: the next attempt's message is due when the delay ends.
            now = self.tasks.clock()
            wait_s = max(0.0, (task.not_before or now) - now)
            send_message(self.settings, self.tasks, task.id, countdown_s=wait_s)
        parent = split.parent_of(task)
        if parent is not None and task.is_terminal:
            split.settle(self.tasks, self.settings, parent, self.worker_id)
