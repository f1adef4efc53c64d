"""The schema of the task store, and the conversion of its rows to Task records.

Written in SQLite's types; ``pgdatabase.translate_ddl`` gives PostgreSQL's. Dates are epoch
seconds (REAL, UTC). ``(schedule_id, scheduled_for_ns)`` is unique, so a schedule can
create at most one task per instant however many schedulers run; tasks submitted by hand
leave both NULL, which neither SQLite nor PostgreSQL counts as a duplicate.
"""

from __future__ import annotations

import json
from typing import Any

from .database import Row
from .model import Task, TaskError, TaskProgress, TaskState

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    rows_done INTEGER NOT NULL DEFAULT 0,
    rows_total INTEGER,
    bytes_written INTEGER NOT NULL DEFAULT 0,
    rows_per_s REAL,
    eta_s REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    not_before REAL,
    result TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at REAL,
    heartbeat_at REAL,
    schedule_id TEXT,
    scheduled_for_ns INTEGER,
    UNIQUE (schedule_id, scheduled_for_ns)
);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (state, priority DESC, seq);
CREATE INDEX IF NOT EXISTS tasks_owner ON tasks (owner, seq);
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (finished_at);
"""

# Columns cleared when an attempt ends, so that no lease outlives its run.
END_LEASE = "lease_expires_at = NULL, not_before = NULL"


def load_json(text: str | None) -> Any:
    return json.loads(text) if text else None


def real(value: float | None) -> float | None:
    """A REAL column's value as a float: SQLite's RETURNING gives 0.0 back as the int 0."""
    return None if value is None else float(value)


def task_from_row(row: Row) -> Task:
    """Build a Task from a row of the tasks table."""
    error = load_json(row["error"])
    return Task(
        id=row["id"],
        owner=row["owner"],
        request=json.loads(row["request"]),
        state=TaskState(row["state"]),
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        progress=TaskProgress(
            row["rows_done"],
            row["rows_total"],
            row["bytes_written"],
            real(row["rows_per_s"]),
            real(row["eta_s"]),
        ),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        started_at=real(row["started_at"]),
        finished_at=real(row["finished_at"]),
        not_before=real(row["not_before"]),
        result=load_json(row["result"]),
        error=TaskError.from_dict(error) if error else None,
        cancel_requested=bool(row["cancel_requested"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=real(row["lease_expires_at"]),
        heartbeat_at=real(row["heartbeat_at"]),
        schedule_id=row["schedule_id"],
        scheduled_for_ns=row["scheduled_for_ns"],
    )
