"""The task record: an export request with an owner, a state, progress and an outcome.

Every interface (CLI, HTTP API, Celery workers, schedules) reads tasks through
:class:`~marketexport.tasks.store.TaskStore`, which returns these frozen records.
Times are UTC instants as epoch seconds (floats); ``to_dict`` renders them in ISO 8601.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import RequestError


class TaskState(StrEnum):
    """Where a task is in its life: pending -> running -> completed | failed | cancelled."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


STATES = tuple(state.value for state in TaskState)
TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
DEFAULT_OWNER = "local"
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_state(text: str) -> TaskState:
    """The TaskState named by ``text``, or a RequestError naming the valid ones."""
    try:
        return TaskState(text)
    except ValueError:
        raise RequestError(
            f"unknown task state {text!r} (expected one of: {', '.join(STATES)})", state=text
        ) from None


# The bounds of a task's priority: the same for the CLI, the HTTP API and library callers.
MIN_PRIORITY = -100
MAX_PRIORITY = 100


def check_priority(priority: int) -> int:
    """Validate a task priority: a whole number from -100 to 100, higher runs first."""
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not (MIN_PRIORITY <= priority <= MAX_PRIORITY)
    ):
        raise RequestError(
            f"invalid priority {str(priority)!r} (expected a whole number from "
            f"{MIN_PRIORITY} to {MAX_PRIORITY}; higher runs first)",
            priority=str(priority),
        )
    return priority


def check_owner(owner: str) -> str:
    """Validate an owner name; it becomes a directory name under the export root."""
    if not isinstance(owner, str) or not _OWNER.match(owner):
        raise RequestError(
            f"invalid owner {owner!r} (expected 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)",
            owner=owner,
        )
    return owner


def new_task_id() -> str:
    """A fresh task id: 32 hex digits, random, so that ids cannot be guessed."""
    return uuid.uuid4().hex


def iso_time(epoch_s: float | None) -> str | None:
    """An epoch-seconds instant as ISO 8601 UTC with milliseconds, or None."""
    if epoch_s is None:
        return None
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TaskProgress:
    """Rows and bytes of the current attempt, with its rate and estimated time left."""

    rows_done: int = 0
    rows_total: int | None = None
    bytes_written: int = 0
    rows_per_s: float | None = None
    eta_s: float | None = None

    @property
    def percent(self) -> float | None:
        if self.rows_total is None:
            return None
        if self.rows_total == 0:
            return 100.0
        return min(100.0, 100.0 * self.rows_done / self.rows_total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_done": self.rows_done,
            "rows_total": self.rows_total,
            "bytes_written": self.bytes_written,
            "rows_per_s": self.rows_per_s,
            "eta_s": self.eta_s,
            "percent": self.percent,
        }


@dataclass(frozen=True)
class TaskError:
    """Why an attempt failed: a message a person can act on, and whether a retry may help."""

    message: str
    kind: str
    retryable: bool

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "kind": self.kind, "retryable": self.retryable}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskError:
        return cls(str(data["message"]), str(data["kind"]), bool(data["retryable"]))

    @classmethod
    def from_exception(cls, exc: BaseException) -> TaskError:
        return cls(str(exc) or type(exc).__name__, type(exc).__name__, _is_retryable(exc))


def _is_retryable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retryable", False))


@dataclass(frozen=True)
class Task:
    """One export task as the task store holds it."""

    id: str
    owner: str
    request: dict[str, Any]
    state: TaskState
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 3
    progress: TaskProgress = field(default_factory=TaskProgress)
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    # Earliest time the next attempt may start (set while waiting out a retry delay).
    not_before: float | None = None
    result: dict[str, Any] | None = None
    error: TaskError | None = None
    cancel_requested: bool = False
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    heartbeat_at: float | None = None
    # Set for tasks created by a schedule: (schedule_id, scheduled_for_ns) is unique.
    schedule_id: str | None = None
    scheduled_for_ns: int | None = None

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def duration_s(self) -> float | None:
        """Run time of the last attempt (so far, when still running)."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else self.updated_at
        return max(0.0, end - self.started_at)

    @property
    def label(self) -> str:
        """A short description: dataset -> format[+codec]."""
        fmt = self.request.get("format", "?")
        codec = self.request.get("compression", "none")
        suffix = f"+{codec}" if codec and codec != "none" else ""
        return f"{self.request.get('dataset', '?')} -> {fmt}{suffix}"

    def output_dir(self, export_root: Path) -> Path:
        """Where this task's files go: <export root>/<owner>/<task id>/."""
        return export_root / check_owner(self.owner) / self.id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as the CLI's --json and the HTTP API print it."""
        return {
            "id": self.id,
            "owner": self.owner,
            "state": self.state.value,
            "request": self.request,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "progress": self.progress.to_dict(),
            "created_at": iso_time(self.created_at),
            "updated_at": iso_time(self.updated_at),
            "started_at": iso_time(self.started_at),
            "finished_at": iso_time(self.finished_at),
            "not_before": iso_time(self.not_before),
            "duration_s": self.duration_s,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
            "cancel_requested": self.cancel_requested,
            "lease_owner": self.lease_owner,
            "lease_expires_at": iso_time(self.lease_expires_at),
            "heartbeat_at": iso_time(self.heartbeat_at),
            "schedule_id": self.schedule_id,
            "scheduled_for_ns": self.scheduled_for_ns,
        }


@dataclass(frozen=True)
class TaskControl:
    """What a running attempt needs to know between batches."""

    lease_held: bool
    cancel_requested: bool
