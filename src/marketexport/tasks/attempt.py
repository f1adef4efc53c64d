"""One attempt at a task: run the export pipeline and record how it ended.

An attempt owns its task's output directory (``<export root>/<owner>/<task id>/``) while
it holds the lease: it empties the directory first, so a re-run replaces whatever an
interrupted run left (a temporary file, or a finished file whose success was never
recorded) and the task never has two outputs. On failure or cancel the directory is
removed; the pipeline's sink has already deleted its temporary file.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..delivery import deliver
from ..errors import ExportError, TaskCancelled
from ..export.encryption import KeyRing
from ..export.pipeline import ExportResult, Progress, run_export
from ..request import ExportRequest
from ..store import Store
from .budget import CpuBudget
from .model import Task, TaskError, TaskProgress, iso_time
from .store import TaskStore
from .windows_rel import run_file_name

logger = logging.getLogger(__name__)

# Longest wait between two attempts, however many retries came before.
MAX_RETRY_DELAY_S = 300.0
# Progress lines in the log: at most one per this many seconds or per this many percent.
LOG_EVERY_S = 5.0
LOG_EVERY_PERCENT = 5.0

ExportFunction = Callable[..., ExportResult]


@dataclass
class AttemptContext:
    """What every attempt of a runner shares."""

    tasks: TaskStore
    worker_id: str
    export_root: Path
    budget: CpuBudget
    acquire_store: Callable[[], Store]
    release_store: Callable[[], None]
    batch_rows: int
    retry_delay_s: float
    progress_write_s: float
    export: ExportFunction = run_export
    # Settings for delivering to a request's destination (credentials, host keys, endpoint).
    settings: Settings | None = None


class AttemptToken:
    """The pipeline's cancel token: true once the task is cancelled, lost or told to stop."""

    def __init__(self, tasks: TaskStore, task_id: str, worker_id: str) -> None:
        self._tasks = tasks
        self._task_id = task_id
        self._worker_id = worker_id
        self.stopping = threading.Event()
        self.lost = False
        self.cancel_seen = False

    def is_cancelled(self) -> bool:
        if self.stopping.is_set() or self.lost:
            return True
        control = self._tasks.control(self._task_id, self._worker_id)
        if not control.lease_held:
            self.lost = True
        elif control.cancel_requested:
            self.cancel_seen = True
        return self.lost or self.cancel_seen


class ProgressRecorder:
    """The pipeline's progress callback: keeps the latest figures and logs them, throttled.

    With ``write_through`` it also writes them to the task store, at most every
    ``progress_write_s``; a runner instead collects them from every task it runs and
    writes them together (:meth:`take_unsent`), so that the task threads never wait for
    the disk.
    """

    def __init__(
        self, context: AttemptContext, task: Task, token: AttemptToken, *, write_through: bool
    ) -> None:
        self._context = context
        self._task = task
        self._token = token
        self._write_through = write_through
        self._last_write = 0.0
        self._last_log = time.monotonic()
        self._last_log_percent = 0.0
        self._unsent = False
        self.last = TaskProgress()

    def __call__(self, progress: Progress) -> None:
        self.last = TaskProgress(
            progress.rows_done,
            progress.rows_total,
            progress.bytes_written,
            round(progress.rows_per_s, 1),
            None if progress.eta_s is None else round(progress.eta_s, 2),
        )
        self._unsent = True
        now = time.monotonic()
        if self._write_through and now - self._last_write >= self._context.progress_write_s:
            self._last_write = now
            latest = self.take_unsent()
            if latest is not None:
                held = self._context.tasks.report_progress(
                    self._task.id, self._context.worker_id, latest
                )
                self._token.lost = self._token.lost or not held
        self._log(progress, now)

    def take_unsent(self) -> TaskProgress | None:
        """The latest figures if they were not written yet (then they count as written)."""
        if not self._unsent:
            return None
        self._unsent = False
        return self.last

    def _log(self, progress: Progress, now: float) -> None:
        percent = self.last.percent or 0.0
        if now - self._last_log < LOG_EVERY_S and percent < self._last_log_percent + 5.0:
            return
        self._last_log, self._last_log_percent = now, percent
        logger.info(
            "task %s progress rows=%d/%d bytes=%d percent=%.1f elapsed_s=%.1f",
            self._task.id, progress.rows_done, progress.rows_total,
            progress.bytes_written, percent, progress.elapsed_s,
            extra={"task_id": self._task.id},
        )  # fmt: skip


def retry_delay_s(base_s: float, attempts: int) -> float:
    """Exponential backoff: base, 2 x base, 4 x base... capped at MAX_RETRY_DELAY_S."""
    return float(min(MAX_RETRY_DELAY_S, base_s * 2 ** max(0, attempts - 1)))


def clear_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def result_record(result: ExportResult) -> dict[str, Any]:
    """What a completed task keeps: its files, their checksum and the manifest."""
    return {
        "path": str(result.path),
        "manifest_path": str(result.manifest_path),
        "sums_path": str(result.sums_path),
        "files": [result.path.name, result.manifest_path.name, result.sums_path.name],
        "rows": result.manifest.rows,
        "file_bytes": result.manifest.file_bytes,
        "file_sha256": result.manifest.file_sha256,
        "manifest": result.manifest.to_dict(),
        **({"delivery": result.extra["delivery"]} if "delivery" in result.extra else {}),
    }


def task_extra(task: Task) -> dict[str, Any]:
    """The task's details for the manifest's ``extra`` section."""
    extra: dict[str, Any] = {"id": task.id, "owner": task.owner, "attempt": task.attempts}
    if task.schedule_id is not None and task.scheduled_for_ns is not None:
        extra["schedule_id"] = task.schedule_id
        extra["scheduled_for"] = iso_time(task.scheduled_for_ns / 1e9)
    return {"task": extra}


def _key_ring(context: AttemptContext, request: ExportRequest) -> KeyRing | None:
    """The key directory's ring, when the export encrypts or signs."""
    settings = context.settings
    signs = request.sign_key or (settings is not None and settings.signing_key)
    if settings is None or not (request.encryption or signs):
        return None
    return KeyRing.from_settings(settings)


def run_attempt(
    context: AttemptContext,
    task: Task,
    token: AttemptToken,
    recorder: ProgressRecorder | None = None,
) -> None:
    """Run one claimed attempt to its end and record the outcome in the task store.

    Without a ``recorder``, progress goes straight to the task store (throttled).
    """
    output_dir = task.output_dir(context.export_root)
    clear_dir(output_dir)
    if recorder is None:
        recorder = ProgressRecorder(context, task, token, write_through=True)
    try:
        request = ExportRequest.from_dict(task.request)
        keys = _key_ring(context, request)
        store = context.acquire_store()
        try:
            result = context.export(
                request,
                context.budget.gated(store),
                output_dir=output_dir,
                batch_rows=context.batch_rows,
                threads=context.budget.task_threads,
                progress=recorder,
                cancel=token,
                file_name=run_file_name(task.request),
                extra=task_extra(task),
                progress_interval_s=min(0.25, context.progress_write_s),
                **({"keys": keys} if keys is not None else {}),
            )
        finally:
            context.release_store()
        if request.destination:
            # A DeliveryError is an ExportError: a dropped connection is retried like any
            # other retryable failure, and the retry resumes the upload.
            receipt = deliver(result, request.destination, context.settings, cancel=token)
            result.extra["delivery"] = receipt.to_dict()
    except TaskCancelled:
        clear_dir(output_dir)
        _end_cancelled(context, task, token)
    except ExportError as exc:
        clear_dir(output_dir)
        _end_failed(context, task, TaskError.from_exception(exc), None)
    except Exception as exc:  # a bug: fail the task once, with the traceback in the log
        clear_dir(output_dir)
        error = TaskError(f"internal error: {type(exc).__name__}: {exc}", "InternalError", False)
        _end_failed(context, task, error, exc)
    else:
        final = TaskProgress(
            result.manifest.rows,
            recorder.last.rows_total if recorder.last.rows_total is not None else 0,
            result.manifest.file_bytes,
            recorder.last.rows_per_s,
            0.0,
        )
        if context.tasks.complete(task.id, context.worker_id, result_record(result), final) is None:
            logger.warning(
                "task %s finished here after its lease passed to another runner; that "
                "runner's outcome stands",
                task.id,
                extra={"task_id": task.id},
            )


def _end_cancelled(context: AttemptContext, task: Task, token: AttemptToken) -> None:
    if token.lost:
        logger.warning(
            "task %s stopped: its lease passed to another runner", task.id,
            extra={"task_id": task.id},
        )  # fmt: skip
    elif token.stopping.is_set() and not token.cancel_seen:
        context.tasks.release(task.id, context.worker_id)
    else:
        context.tasks.mark_cancelled(task.id, context.worker_id)


def _end_failed(
    context: AttemptContext, task: Task, error: TaskError, exc: BaseException | None
) -> None:
    retry_at = None
    if error.retryable and task.attempts < task.max_attempts:
        retry_at = context.tasks.clock() + retry_delay_s(context.retry_delay_s, task.attempts)
    context.tasks.fail(task.id, context.worker_id, error, retry_at=retry_at, exc_info=exc)
