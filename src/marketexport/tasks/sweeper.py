"""The sweep: what keeps Celery's tasks from being lost, run every few seconds.

One sweep, from any number of processes at once (every step is compare-and-set):

1. settle tasks whose lease ran out (their worker died or hung): back to pending, or
   cancelled when a cancel was asked for meanwhile, or failed when no attempt is left;
   the files of those that ended are removed;
2. send a message for every pending, due task that has no live one
   (:func:`~marketexport.tasks.executor.send_missing`);
3. bring split exports up to date with their parts (:func:`~marketexport.tasks.split.settle`).

``celery-worker`` runs sweeps (and, with ``--scheduler``, the schedule loop) in a helper
process started with ``spawn``, so that the worker's own process, which forks the pool,
never holds a SQLite connection. ``celery-beat`` runs them in the foreground.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path

from ..config import Settings
from .attempt import clear_dir
from .executor import queue_length, send_missing
from .messages import ensure_schema
from .runner import new_worker_id
from .split import settle, waiting_parents
from .store import TaskStore

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did."""

    recovered: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)


class Sweeper:
    """Runs sweeps over a task store for the Celery executor."""

    def __init__(
        self,
        settings: Settings,
        tasks: TaskStore,
        *,
        queue_is_empty: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.tasks = tasks
        self.worker_id = "sweep:" + new_worker_id()
        self.queue_is_empty = queue_is_empty or (lambda: queue_length(settings) == 0)
        ensure_schema(tasks)

    def sweep(self) -> SweepReport:
        report = SweepReport()
        export_root = Path(self.settings.export_path)
        for task in self.tasks.recover_expired():
            report.recovered.append(task.id)
            if task.is_terminal:
                clear_dir(task.output_dir(export_root))
        report.sent = send_missing(self.settings, self.tasks, self.queue_is_empty)
        for parent_id in waiting_parents(self.tasks):
            settle(self.tasks, self.settings, parent_id, self.worker_id)
            report.settled.append(parent_id)
        return report

    def run(self, stop: threading.Event) -> None:
        """Sweep every ``celery_sweep_s`` seconds until ``stop`` is set."""
        logger.info("sweeps started: every %d s", self.settings.celery_sweep_s)
        while True:
            try:
                self.sweep()
            except Exception:  # a busy store or an unreachable broker: the next sweep retries
                logger.warning("sweep failed; the next one tries again", exc_info=True)
            if stop.wait(self.settings.celery_sweep_s):
                break


def run_helper(
    settings: Settings, with_scheduler: bool, parent_pid: int, log_level: int, logfile: Path | None
) -> None:
    """The helper process of a Celery worker: sweeps, and the schedule loop when asked."""
    from .scheduler import scheduler_hooks
    from .tasklog import configure_worker_logging

    configure_worker_logging(log_level, logfile)
    tasks = TaskStore.open(settings)
    stop = threading.Event()
    hooks = list(scheduler_hooks(settings, tasks)) if with_scheduler else []
    for start, _ in hooks:
        start()
    sweeper = threading.Thread(target=Sweeper(settings, tasks).run, args=(stop,), daemon=True)
    sweeper.start()
    # A helper whose worker died (SIGKILL) stops too; a sweep left behind would be harmless.
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            stop.set()
    for _, stop_hook in hooks:
        stop_hook()
    sweeper.join(10)
    tasks.close()


def start_helper(
    settings: Settings, *, with_scheduler: bool, logfile: Path | None = None
) -> BaseProcess:
    """Start the helper process (spawned: it shares no memory with the forking worker)."""
    context = multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    process = context.Process(
        target=run_helper,
        args=(settings, with_scheduler, os.getpid(), level, logfile),
        name="sweeper",
        daemon=True,
    )
    process.start()
    return process
