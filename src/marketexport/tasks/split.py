"""Split exports: a parent task whose parts are ordinary tasks that workers run in parallel.

1. The parent task's request carries ``split`` (``split_plan.SplitSpec``). A worker claims
   it like any task and calls :func:`start_parts`, which plans the parts in the store and,
   in one transaction, inserts the part tasks (ids derived from the parent id and the
   part number, so planning twice inserts nothing twice), their ``task_parts`` rows, and
   hands the parent over to its parts: ``lease_owner = "parts"`` with no expiry (nobody
   renews it, so it cannot run out). Then it sends the parts' messages.
2. Each part is an export of its own: claimed, leased, committed, retried alone.
3. :func:`settle` runs after each part ends and in every sweep: the parent's progress is
   the sum of its parts'; once all parts are completed one finaliser takes the parent
   (compare-and-set to ``final:<worker>``, with a lease) and writes the parts manifest
   (``export.parts``); a part that failed for good, or was cancelled, cancels the others
   and fails the parent (completed parts are kept, so ``tasks retry`` of the parent runs
   only the rest); a cancel of the parent cancels its parts and removes their files.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..errors import ExportError, TaskStateError
from ..export.parts import PartsResult, write_parts_manifest
from ..request import ExportRequest
from .attempt import clear_dir, retry_delay_s, task_extra
from .executor import new_message_id, send_message, send_noted
from .messages import note_send
from .model import Task, TaskError, TaskProgress, TaskState
from .schema import task_from_row
from .split_plan import PartPlan, SplitSpec, base_file_name, plan_parts
from .store import TaskStore
from .windows_rel import run_file_name

if TYPE_CHECKING:
    from .celery_worker import ProcessWorker

logger = logging.getLogger(__name__)

PARTS_OWNER = "parts"
FINAL_PREFIX = "final:"


class _LeaseLost(Exception):
    """The parent's lease passed to another worker while its parts were planned."""


@dataclass(frozen=True)
class Part:
    """One part of a split export, with its task as the task store holds it now."""

    number: int
    rows_planned: int
    label: str
    task: Task


def is_split(task: Task) -> bool:
    return isinstance(task.request.get("split"), dict)


def parent_of(task: Task) -> str | None:
    """The parent task id of a part, or None for any other task."""
    part_of = task.request.get("part_of")
    return str(part_of["task"]) if isinstance(part_of, dict) and "task" in part_of else None


def split_request(request: ExportRequest, split: SplitSpec) -> dict[str, Any]:
    """The request a split export's parent task stores."""
    return {**request.to_dict(), "split": split.to_dict()}


def part_task_id(parent_id: str, number: int) -> str:
    return hashlib.sha256(f"{parent_id}:part:{number}".encode()).hexdigest()[:32]


def parts_of(tasks: TaskStore, parent_id: str) -> list[Part]:
    rows = tasks.read(
        "SELECT p.part_no, p.rows_planned, p.label, t.* FROM task_parts p "
        "JOIN tasks t ON t.id = p.task_id WHERE p.parent_id = ? ORDER BY p.part_no",
        (parent_id,),
    )
    return [Part(r["part_no"], r["rows_planned"], r["label"], task_from_row(r)) for r in rows]


def waiting_parents(tasks: TaskStore) -> list[str]:
    """Split exports whose parts are running (the parent is held by its parts)."""
    rows = tasks.read(
        "SELECT id FROM tasks WHERE state = 'running' AND lease_owner = ?", (PARTS_OWNER,)
    )
    return [row[0] for row in rows]


def start_parts(worker: ProcessWorker, task: Task) -> str:
    """Plan and queue the parts of a claimed split export, or take up the existing ones."""
    from .celery_worker import Heartbeat

    tasks = worker.tasks
    try:
        with Heartbeat(tasks, task.id, worker.worker_id, worker.lease_s):
            existing = parts_of(tasks, task.id)
            if existing:
                handed = _resume(tasks, task, existing, worker.worker_id)
            else:
                plans, names = _plan(worker, task)
                handed = _create(tasks, task, plans, names, worker.worker_id)
    except _LeaseLost:  # the transaction was rolled back: nothing was queued
        handed = None
    except Exception as exc:  # noqa: BLE001 - the attempt ends in the task store either way
        _fail(tasks, worker.settings, task, worker.worker_id, exc)
        return "failed"
    if handed is None:
        logger.warning("task %s: lost its lease while planning its parts", task.id)
        return "lost"
    for part_id, message_id in handed:
        send_noted(worker.settings, tasks, part_id, message_id)
    settle(tasks, worker.settings, task.id, worker.worker_id)
    return "split"


def _plan(worker: ProcessWorker, task: Task) -> tuple[list[PartPlan], list[str]]:
    """The parts and their file names; the whole export's name goes in each part's request."""
    request = ExportRequest.from_dict(task.request)
    split = SplitSpec.from_dict(task.request["split"])
    store = worker.context.acquire_store()
    try:
        plans = plan_parts(request, split, store, worker.settings.batch_rows)
        stats = store.stats(request.spec, request.filters())
    finally:
        worker.context.release_store()
    whole = run_file_name(task.request)
    stem, extension = base_file_name(request, stats.first_ns, stats.last_ns)
    if whole is not None:
        stem, extension = whole[: len(whole) - len(extension)], extension
    names = [f"{stem}_part{plan.number:04d}{extension}" for plan in plans]
    return plans, [stem + extension, *names]


def _create(
    tasks: TaskStore, parent: Task, plans: list[PartPlan], names: list[str], worker_id: str
) -> list[tuple[str, str]] | None:
    """Insert the part tasks and hand the parent to them, in one transaction.

    Returns the (part, message id) pairs to send, or None when the parent's lease was lost.
    """
    now = tasks.clock()
    whole, part_names = names[0], names[1:]
    messages = []
    with tasks.transaction() as con:
        for plan, name in zip(plans, part_names, strict=True):
            part_id = part_task_id(parent.id, plan.number)
            body = {
                **plan.request.to_dict(),
                "file_name": name,
                "part_of": {"task": parent.id, "part": plan.number, "of": len(plans),
                            "whole": whole},
            }  # fmt: skip
            con.execute(
                "INSERT INTO tasks (id, owner, request, state, priority, max_attempts, "
                "created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (part_id, parent.owner, json.dumps(body, default=str), parent.priority,
                 parent.max_attempts, now, now),
            )  # fmt: skip
            con.execute(
                "INSERT INTO task_parts (parent_id, part_no, task_id, rows_planned, label) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (parent.id, plan.number, part_id, plan.rows, plan.label),
            )
            messages.append((part_id, new_message_id(part_id)))
            note_send(con, *messages[-1], now)
        if not _hand_over(con, parent.id, worker_id, sum(plan.rows for plan in plans), now):
            raise _LeaseLost
    logger.info(
        "task %s split into %d parts by %s", parent.id, len(plans),
        parent.request["split"]["by"], extra={"task_id": parent.id},
    )  # fmt: skip
    return messages


def _resume(
    tasks: TaskStore, parent: Task, parts: list[Part], worker_id: str
) -> list[tuple[str, str]] | None:
    """Queue again every part that ended without a usable file, and hand the parent over.

    Returns the (part, message id) pairs to send, or None when the parent's lease was lost.
    """
    now = tasks.clock()
    messages = []
    with tasks.transaction() as con:
        for part in parts:
            result = part.task.result or {}
            usable = (
                part.task.state == TaskState.COMPLETED and Path(result.get("path", "")).is_file()
            )
            if part.task.is_terminal and not usable:
                con.execute(
                    "UPDATE tasks SET state = 'pending', attempts = 0, cancel_requested = 0, "
                    "error = NULL, result = NULL, finished_at = NULL, not_before = NULL, "
                    "rows_done = 0, rows_total = NULL, bytes_written = 0, rows_per_s = NULL, "
                    "eta_s = NULL, updated_at = ? WHERE id = ?",
                    (now, part.task.id),
                )
                messages.append((part.task.id, new_message_id(part.task.id)))
                note_send(con, *messages[-1], now)
        if not _hand_over(con, parent.id, worker_id, sum(p.rows_planned for p in parts), now):
            raise _LeaseLost
    logger.info("task %s taken up again with its %d parts", parent.id, len(parts),
                extra={"task_id": parent.id})  # fmt: skip
    return messages


def _hand_over(con: Any, parent_id: str, worker_id: str, rows_total: int, now: float) -> bool:
    cursor = con.execute(
        "UPDATE tasks SET lease_owner = ?, lease_expires_at = NULL, heartbeat_at = ?, "
        "updated_at = ?, rows_total = ?, rows_done = 0, bytes_written = 0 "
        "WHERE id = ? AND state = 'running' AND lease_owner = ?",
        (PARTS_OWNER, now, now, rows_total, parent_id, worker_id),
    )
    return bool(cursor.rowcount == 1)


def settle(tasks: TaskStore, settings: Settings, parent_id: str, worker_id: str) -> None:
    """Bring a split export up to date with its parts (see the module docstring)."""
    parent = tasks.get(parent_id)
    if parent.state != TaskState.RUNNING or parent.lease_owner != PARTS_OWNER:
        return
    parts = parts_of(tasks, parent_id)
    tasks.report_progress(parent_id, PARTS_OWNER, _sum_progress(tasks, parent, parts))
    export_root = Path(settings.export_path)
    ended_badly = (TaskState.FAILED, TaskState.CANCELLED)
    # A part that failed names the failure better than those cancelled because of it.
    bad = sorted((p for p in parts if p.task.state in ended_badly),
                 key=lambda p: (p.task.state != TaskState.FAILED, p.number))  # fmt: skip
    if parent.cancel_requested or bad:
        _cancel_unfinished(tasks, parts)
        if not all(part.task.is_terminal for part in parts_of(tasks, parent_id)):
            return  # the running parts stop at their next batch; a later settle ends it
        if parent.cancel_requested:
            for part in parts:
                clear_dir(part.task.output_dir(export_root))
            clear_dir(parent.output_dir(export_root))
            tasks.mark_cancelled(parent_id, PARTS_OWNER)
        else:
            tasks.fail(parent_id, PARTS_OWNER, _part_error(bad[0], len(parts)))
        return
    if all(part.task.state == TaskState.COMPLETED for part in parts):
        _finalize(tasks, settings, parent, parts, worker_id)


def _cancel_unfinished(tasks: TaskStore, parts: list[Part]) -> None:
    for part in parts:
        if part.task.is_terminal or part.task.cancel_requested:
            continue
        try:
            tasks.request_cancel(part.task.id)
        except TaskStateError:  # it ended meanwhile
            pass


def _part_error(part: Part, count: int) -> TaskError:
    state = part.task.state.value
    detail = f": {part.task.error.message}" if part.task.error else ""
    return TaskError(
        f"part {part.number} of {count} (task {part.task.id}, {part.label}) {state}{detail}; "
        "the completed parts are kept and `tasks retry` of this task runs only the others",
        "PartFailed",
        False,
    )


def _sum_progress(tasks: TaskStore, parent: Task, parts: list[Part]) -> TaskProgress:
    rows_done = sum(part.task.progress.rows_done for part in parts)
    rows_total = sum(part.rows_planned for part in parts)
    elapsed_s = max(1e-3, tasks.clock() - (parent.started_at or tasks.clock()))
    rate = rows_done / elapsed_s
    eta = (rows_total - rows_done) / rate if rate > 0 and rows_total > rows_done else None
    bytes_written = sum(part.task.progress.bytes_written for part in parts)
    return TaskProgress(rows_done, rows_total, bytes_written, round(rate, 1),
                        None if eta is None else round(eta, 2))  # fmt: skip


def _finalize(
    tasks: TaskStore, settings: Settings, parent: Task, parts: list[Part], worker_id: str
) -> None:
    """Write the parts manifest and complete the parent, if this caller wins the parent."""
    from .celery_worker import Heartbeat

    owner = FINAL_PREFIX + worker_id
    lease_s = float(settings.task_lease_s)
    now = tasks.clock()
    with tasks.transaction() as con:
        took = con.execute(
            "UPDATE tasks SET lease_owner = ?, lease_expires_at = ?, heartbeat_at = ? "
            "WHERE id = ? AND state = 'running' AND lease_owner = ?",
            (owner, now + lease_s, now, parent.id, PARTS_OWNER),
        ).rowcount
    if not took:
        return
    directory = parent.output_dir(Path(settings.export_path))
    try:
        with Heartbeat(tasks, parent.id, owner, lease_s):
            clear_dir(directory)
            written = write_parts_manifest(
                directory,
                parts[0].task.request["part_of"]["whole"],
                _whole(parent),
                [(p.number, p.task.id, Path((p.task.result or {})["path"])) for p in parts],
                join=bool(parent.request["split"].get("concat")),
                extra=task_extra(parent),
            )
    except Exception as exc:  # noqa: BLE001 - every failure ends the attempt the same way
        clear_dir(directory)
        _fail(tasks, settings, parent, owner, exc)
        return
    done = _sum_progress(tasks, parent, parts)
    tasks.complete(parent.id, owner, _result(written, parts), done)


def _whole(parent: Task) -> dict[str, Any]:
    request = ExportRequest.from_dict(parent.request)
    return {
        "dataset": request.dataset,
        "format": request.format,
        "compression": request.compression,
        "request": request.to_dict(),
        "split": parent.request["split"],
    }


def _result(written: PartsResult, parts: list[Part]) -> dict[str, Any]:
    """The parent's result: the whole export's name, its parts manifest, and every part.

    ``path`` names the whole export: the joined file, or without one the name it would
    have, beside its parts manifest (``verify`` accepts either; there is no file to
    download then).
    """
    document = written.document
    joined = document.get("joined")
    whole = written.manifest_path.with_name(str(document["file"]))
    files = [written.manifest_path.name, written.sums_path.name]
    return {
        "path": str(whole),
        "manifest_path": str(written.manifest_path),
        "sums_path": str(written.sums_path),
        "files": [whole.name, *files] if joined else files,
        "rows": document["rows"],
        "file_bytes": joined["bytes"]["file"] if joined else written.manifest_path.stat().st_size,
        "file_sha256": joined["sha256"]["file"] if joined else written.manifest_sha256,
        "parts": [
            {"part": p.number, "task_id": p.task.id, "path": (p.task.result or {}).get("path"),
             "rows": (p.task.result or {}).get("rows")}
            for p in parts
        ],
    }  # fmt: skip


def _fail(tasks: TaskStore, settings: Settings, task: Task, owner: str, exc: BaseException) -> None:
    """End the parent's attempt with an error: back to pending (with a message) or failed."""
    if isinstance(exc, ExportError):
        error = TaskError.from_exception(exc)
    else:
        error = TaskError(f"internal error: {type(exc).__name__}: {exc}", "InternalError", False)
    retry_at = None
    if error.retryable and task.attempts < task.max_attempts:
        retry_at = tasks.clock() + retry_delay_s(float(settings.task_retry_delay_s), task.attempts)
    ended = tasks.fail(task.id, owner, error, retry_at=retry_at,
                       exc_info=None if isinstance(exc, ExportError) else exc)  # fmt: skip
    if ended is not None and ended.state == TaskState.PENDING and retry_at is not None:
        send_message(settings, tasks, task.id, countdown_s=retry_at - tasks.clock())
