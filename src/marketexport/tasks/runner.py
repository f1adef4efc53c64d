"""The local runner: takes pending tasks from the task store and runs them in threads.

The export pipeline spends its time in Arrow, DuckDB and the codecs, which release the
GIL, so threads run exports side by side. The runner:

- claims due pending tasks (priority first, then submission order) up to ``concurrency``;
- from one reporter thread, writes the progress of all its tasks in one transaction (at
  most every ``progress_write_s``), so task threads never wait for the disk, and renews
  their leases every third of the lease time, so that a runner that dies (SIGKILL, power
  cut) is noticed when its leases run out, and by nothing else;
- settles tasks whose lease ran out on start and then every half lease, so a task of a
  dead runner is re-queued (or cancelled, when a cancel was asked for meanwhile);
- on :meth:`Runner.stop` claims nothing more, lets running tasks finish for a grace
  period, then stops them at their next batch and puts them back in the queue.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..config import Settings
from ..errors import StoreError
from ..export.pipeline import run_export
from ..store import Store, open_store
from .attempt import (
    AttemptContext,
    AttemptToken,
    ExportFunction,
    ProgressRecorder,
    clear_dir,
    run_attempt,
)
from .budget import ArrowThreads, CpuBudget
from .model import Task, TaskState
from .store import TaskStore

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    """host:pid:random, unique to one runner process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SharedStore:
    """One read-only data store shared by all running tasks, open only while any runs.

    Closing it when the runner is idle releases DuckDB's file lock, so that an import can
    write to the store between exports.
    """

    def __init__(self, opener: Callable[[], Store]) -> None:
        self._opener = opener
        self._store: Store | None = None
        self._users = 0
        self._lock = threading.Lock()
        self.opened = 0

    def acquire(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = self._opener()
                self.opened += 1
            self._users += 1
            return self._store

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._store is not None:
                store, self._store = self._store, None
                store.close()


def default_store_opener(settings: Settings, concurrency: int) -> Callable[[], Store]:
    """Open the settings' store read-only, with the memory of one export per task."""
    shared = replace(settings, store_memory_mb=settings.store_memory_mb * concurrency)
    return lambda: open_store(shared, read_only=True)


class Runner:
    """Runs tasks from a TaskStore until stopped (or, with ``until_idle``, until none is left)."""

    def __init__(
        self,
        settings: Settings,
        tasks: TaskStore,
        *,
        concurrency: int | None = None,
        worker_id: str | None = None,
        lease_s: float | None = None,
        retry_delay_s: float | None = None,
        poll_s: float = 0.5,
        progress_write_s: float = 0.5,
        open_data_store: Callable[[], Store] | None = None,
        export: ExportFunction = run_export,
    ) -> None:
        self.settings = settings
        self.tasks = tasks
        self.concurrency = int(concurrency or settings.concurrency)
        self.worker_id = worker_id or new_worker_id()
        self.lease_s = float(lease_s if lease_s is not None else settings.task_lease_s)
        self.poll_s = poll_s
        self.budget = CpuBudget(settings.cpu_threads, self.concurrency)
        opener = open_data_store or default_store_opener(settings, self.concurrency)
        self.shared_store = SharedStore(opener)
        self.context = AttemptContext(
            tasks=tasks,
            worker_id=self.worker_id,
            export_root=Path(settings.export_path),
            budget=self.budget,
            acquire_store=self.shared_store.acquire,
            release_store=self.shared_store.release,
            batch_rows=settings.batch_rows,
            retry_delay_s=float(
                retry_delay_s if retry_delay_s is not None else settings.task_retry_delay_s
            ),
            progress_write_s=progress_write_s,
            export=export,
            settings=settings,
        )
        self._active: dict[str, tuple[AttemptToken, ProgressRecorder]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_now = threading.Event()
        self._done = threading.Event()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._active)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self, *, now: bool = False) -> None:
        """Claim nothing more; with ``now``, stop running tasks at their next batch too."""
        self._stopping.set()
        if now:
            self._stop_now.set()
        self._wake.set()

    def run(self, *, until_idle: bool = False, grace_s: float = 30.0) -> None:
        """Run tasks in the calling thread until :meth:`stop` (or idle, with ``until_idle``)."""
        logger.info(
            "runner %s starting: concurrency=%d %r lease_s=%.1f",
            self.worker_id, self.concurrency, self.budget, self.lease_s,
        )  # fmt: skip
        reporter = threading.Thread(target=self._report_loop, name="reporter", daemon=True)
        with (
            ArrowThreads(self.budget.threads),
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="task") as pool,
        ):
            reporter.start()
            try:
                self._loop(pool, until_idle)
            finally:
                self._drain(grace_s)
        self._done.set()
        reporter.join()
        logger.info("runner %s stopped", self.worker_id)

    def _loop(self, pool: ThreadPoolExecutor, until_idle: bool) -> None:
        next_recovery = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_recovery:
                    self.recover()
                    next_recovery = time.monotonic() + max(0.1, self.lease_s / 2)
                self._fill(pool)
                if until_idle and self._is_idle():
                    return
            except StoreError as exc:  # the task store is busy or unwell: try again soon
                logger.warning("runner %s: %s", self.worker_id, exc)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _fill(self, pool: ThreadPoolExecutor) -> None:
        while self.running < self.concurrency and not self._stopping.is_set():
            task = self.tasks.claim_next(self.worker_id, self.lease_s)
            if task is None:
                return
            token = AttemptToken(self.tasks, task.id, self.worker_id)
            recorder = ProgressRecorder(self.context, task, token, write_through=False)
            with self._lock:
                self._active[task.id] = (token, recorder)
            pool.submit(self._run_one, task, token, recorder)

    def _run_one(self, task: Task, token: AttemptToken, recorder: ProgressRecorder) -> None:
        try:
            run_attempt(self.context, task, token, recorder)
        except Exception:  # the store itself failed; the lease runs out and another run
            logger.exception("task %s: recording its outcome failed", task.id)
        finally:
            with self._lock:
                self._active.pop(task.id, None)
            self._wake.set()

    def _is_idle(self) -> bool:
        return self.running == 0 and self.tasks.count(TaskState.PENDING, TaskState.RUNNING) == 0

    def recover(self) -> list[Task]:
        """Settle tasks whose runner is gone; remove the files of those that ended."""
        settled = self.tasks.recover_expired()
        for task in settled:
            if task.is_terminal:
                clear_dir(task.output_dir(self.context.export_root))
        return settled

    def _report_loop(self) -> None:
        """Write every running task's progress, and renew their leases, from one thread."""
        beat_every_s = self.lease_s / 3
        next_beat = time.monotonic() + beat_every_s
        while not self._done.wait(min(self.context.progress_write_s, beat_every_s)):
            with self._lock:
                active = dict(self._active)
            progress = {
                task_id: latest
                for task_id, (_, recorder) in active.items()
                if (latest := recorder.take_unsent()) is not None
            }
            try:
                lost = self.tasks.report_progress_many(self.worker_id, progress)
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + beat_every_s
                    lost |= self.tasks.heartbeat_many(self.worker_id, active, self.lease_s)
            except Exception:  # a busy store: the next round tries again
                logger.warning("runner %s: progress or heartbeat failed", self.worker_id,
                               exc_info=True)  # fmt: skip
                continue
            for task_id in lost & active.keys():
                active[task_id][0].lost = True

    def _drain(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while self.running and time.monotonic() < deadline and not self._stop_now.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
        with self._lock:
            for token, _ in self._active.values():
                token.stopping.set()
