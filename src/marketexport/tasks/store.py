"""The task store: the one place task state lives, in a SQLite file or a PostgreSQL database.

Every state change is one transaction whose UPDATE names the state it expects, so two
runners, or a runner and a Celery worker, can never both take a task: the loser's UPDATE
matches no row. A change is committed before it is logged or returned. The database
(``tasks.database``) is the data directory's SQLite file unless the ``task_store`` setting
names a ``postgresql://`` URL, which the processes of several machines can share.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import NotFoundError, RequestError, TaskStateError
from ..request import ExportRequest
from .database import (
    Connection,
    Row,
    TaskDatabase,
    is_postgres_url,
    open_task_database,
    split_script,
)
from .leases import LeaseTransitions
from .model import (
    DEFAULT_OWNER,
    Task,
    TaskState,
    check_owner,
    check_priority,
    new_task_id,
)
from .schema import SCHEMA, task_from_row

logger = logging.getLogger(__name__)

TASKS_FILE_NAME = "tasks.sqlite3"


def task_store_path(settings: Settings) -> Path:
    """The SQLite file of the task store; with a PostgreSQL task store, the data
    directory's file, which still keeps the HTTP API's users and tokens."""
    if settings.task_store and not is_postgres_url(settings.task_store):
        return Path(settings.task_store)
    return settings.data_dir / TASKS_FILE_NAME


def task_store_location(settings: Settings) -> Path | str:
    """The ``task_store`` URL, or the path of the SQLite file."""
    if settings.task_store and is_postgres_url(settings.task_store):
        return settings.task_store
    return task_store_path(settings)


class TaskStore(LeaseTransitions):
    """Tasks in a SQLite file or a PostgreSQL database; safe to share between threads and
    processes (and, with PostgreSQL, machines)."""

    def __init__(
        self,
        where: Path | str,
        *,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open the store at ``where``: a SQLite file path, or a postgresql:// URL."""
        self.location = where
        self.clock = clock
        self.db: TaskDatabase = open_task_database(where, busy_timeout_s=busy_timeout_s)
        self._created: set[tuple[str, ...]] = set()
        self.create_tables(SCHEMA)

    @classmethod
    def open(cls, settings: Settings, **kwargs: Any) -> TaskStore:
        """The task store the settings name (default: the data directory's SQLite file)."""
        return cls(task_store_location(settings), **kwargs)

    def __repr__(self) -> str:
        return f"TaskStore({self.db!r})"

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction (also for sibling tables such as schedules)."""
        return self.db.transaction()

    def read(self, sql: str, params: Any = ()) -> list[Row]:
        """Run one read query and return every row."""
        return self.db.read(sql, params)

    def create_tables(self, statements: str | Sequence[str]) -> None:
        """Create tables and indexes that are missing (a ``;``-separated script, or a list)."""
        listed = tuple(split_script(statements) if isinstance(statements, str) else statements)
        if listed not in self._created:  # every statement is IF NOT EXISTS; once is enough
            self.db.create_tables(listed)
            self._created.add(listed)

    def _update(self, sql: str, params: dict[str, Any]) -> Task | None:
        with self.transaction() as con:
            rows = con.execute(sql + " RETURNING *", params).fetchall()
        return task_from_row(rows[0]) if rows else None

    def _transition(self, task_id: str, sql: str, refusal: Callable[[str], str]) -> Task:
        """One compare-and-set UPDATE of a task (``:id``, ``:now``); when it matches nothing,
        a TaskStateError with ``refusal(state)``, or NotFoundError for an unknown id."""
        task = self._update(sql, {"id": task_id, "now": self.clock()})
        if task is None:
            state = self.get(task_id).state.value
            raise TaskStateError(refusal(state), task_id=task_id, state=state)
        return task

    # -- submitting and reading ---------------------------------------------------------

    def submit(
        self,
        request: ExportRequest | dict[str, Any],
        *,
        owner: str = DEFAULT_OWNER,
        priority: int = 0,
        max_attempts: int = 3,
        schedule_id: str | None = None,
        scheduled_for_ns: int | None = None,
    ) -> Task:
        """Queue an export. A request given as a dict is stored as is and judged at run time.

        For a (schedule_id, scheduled_for_ns) pair that already has a task, that task is
        returned and nothing is added; see :meth:`submit_scheduled`.
        """
        return self.submit_scheduled(
            request,
            owner=owner,
            priority=priority,
            max_attempts=max_attempts,
            schedule_id=schedule_id,
            scheduled_for_ns=scheduled_for_ns,
        )[0]

    def submit_scheduled(
        self,
        request: ExportRequest | dict[str, Any],
        *,
        owner: str = DEFAULT_OWNER,
        priority: int = 0,
        max_attempts: int = 3,
        schedule_id: str | None = None,
        scheduled_for_ns: int | None = None,
    ) -> tuple[Task, bool]:
        """Queue an export; returns the task and whether it was created just now."""
        check_owner(owner)
        check_priority(priority)
        if max_attempts < 1:
            raise RequestError(f"invalid max_attempts {max_attempts!r} (expected >= 1)")
        if (schedule_id is None) != (scheduled_for_ns is None):
            raise RequestError("schedule_id and scheduled_for_ns go together")
        body = request.to_dict() if isinstance(request, ExportRequest) else dict(request)
        now = self.clock()
        params = {
            "id": new_task_id(),
            "owner": owner,
            "request": json.dumps(body, default=str),
            "priority": int(priority),
            "max_attempts": int(max_attempts),
            "now": now,
            "schedule_id": schedule_id,
            "scheduled_for_ns": scheduled_for_ns,
        }
        with self.transaction() as con:
            rows = con.execute(
                "INSERT INTO tasks (id, owner, request, state, priority, max_attempts, "
                "created_at, updated_at, schedule_id, scheduled_for_ns) VALUES (:id, :owner, "
                ":request, 'pending', :priority, :max_attempts, :now, :now, :schedule_id, "
                ":scheduled_for_ns) ON CONFLICT (schedule_id, scheduled_for_ns) DO NOTHING "
                "RETURNING *",
                params,
            ).fetchall()
            if not rows:
                rows = con.execute(
                    "SELECT * FROM tasks WHERE schedule_id = ? AND scheduled_for_ns = ?",
                    (schedule_id, scheduled_for_ns),
                ).fetchall()
                return task_from_row(rows[0]), False
        task = task_from_row(rows[0])
        logger.info(
            "task %s queued owner=%s export=%s priority=%d",
            task.id,
            owner,
            task.label,
            task.priority,
            extra={"task_id": task.id},
        )
        return task, True

    def get(self, task_id: str) -> Task:
        """The task with this id, or NotFoundError."""
        rows = self.read("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if not rows:
            raise NotFoundError(f"no task with id {task_id!r}", task_id=task_id)
        return task_from_row(rows[0])

    def find(self, id_or_prefix: str) -> Task:
        """The task whose id is, or uniquely starts with, the text (at least 6 characters)."""
        rows = self.read("SELECT * FROM tasks WHERE id = ?", (id_or_prefix,))
        if not rows and len(id_or_prefix) >= 6 and id_or_prefix.isalnum():
            rows = self.read(
                "SELECT * FROM tasks WHERE id LIKE ? LIMIT 2", (id_or_prefix.lower() + "%",)
            )
            if len(rows) > 1:
                raise RequestError(
                    f"task id prefix {id_or_prefix!r} matches several tasks (give more of it)",
                    task_id=id_or_prefix,
                )
        if not rows:
            hint = " (a prefix needs at least 6 characters)" if len(id_or_prefix) < 6 else ""
            raise NotFoundError(
                f"no task with id {id_or_prefix!r}{hint}; 'marketexport tasks list' shows them",
                task_id=id_or_prefix,
            )
        return task_from_row(rows[0])

    def list(
        self,
        *,
        state: TaskState | None = None,
        owner: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Task]:
        """Tasks, newest first, optionally of one state and owner."""
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(TaskState(state).value)
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.read(
            f"SELECT * FROM tasks {clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        return [task_from_row(row) for row in rows]

    def count(self, *states: TaskState) -> int:
        """Tasks in any of the given states (all tasks when none is given)."""
        if not states:
            return int(self.read("SELECT count(*) FROM tasks")[0][0])
        marks = ", ".join("?" for _ in states)
        values = [TaskState(s).value for s in states]
        return int(self.read(f"SELECT count(*) FROM tasks WHERE state IN ({marks})", values)[0][0])

    # -- the user's side: cancel and retry ------------------------------------------------

    def request_cancel(self, task_id: str) -> Task:
        """Cancel a pending task now, or ask a running one to stop at its next batch."""
        # The UPDATE itself names the states it changes, so a task that ends meanwhile
        # (on another connection, or another machine) is left as it ended.
        task = self._transition(
            task_id,
            "UPDATE tasks SET cancel_requested = 1, updated_at = :now, "
            "state = CASE state WHEN 'pending' THEN 'cancelled' ELSE state END, "
            "finished_at = CASE state WHEN 'pending' THEN :now ELSE finished_at END "
            "WHERE id = :id AND state IN ('pending', 'running')",
            lambda state: f"task {task_id} is already {state}; nothing to cancel",
        )
        if task.state == TaskState.CANCELLED:
            logger.info("task %s cancelled while pending", task.id, extra={"task_id": task.id})
        else:
            logger.info(
                "task %s cancel requested; stops at its next batch",
                task.id,
                extra={"task_id": task.id},
            )
        return task

    def retry(self, task_id: str) -> Task:
        """Put a failed or cancelled task back in the queue with a fresh set of attempts."""
        task = self._transition(
            task_id,
            "UPDATE tasks SET state = 'pending', attempts = 0, cancel_requested = 0, "
            "error = NULL, result = NULL, finished_at = NULL, not_before = NULL, "
            "rows_done = 0, rows_total = NULL, bytes_written = 0, rows_per_s = NULL, "
            "eta_s = NULL, updated_at = :now WHERE id = :id AND state IN ('failed', 'cancelled')",
            lambda state: (
                f"task {task_id} is {state}; only failed or cancelled tasks can be retried"
            ),
        )
        logger.info("task %s queued again on request", task.id, extra={"task_id": task.id})
        return task
