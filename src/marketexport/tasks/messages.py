"""What the Celery executor keeps beside the tasks: messages sent, deliveries, split parts.

Side tables in the task store's database (the one place state lives):

- ``task_messages``: per task, the last Celery message sent for it (id, when, when it
  becomes due, how many were sent). A sweep uses it to find pending tasks that have no
  live message: never sent (Redis was down), or sent before the task became pending again.
- ``task_deliveries``: one row per message a worker received: whether it claimed the task,
  when the export pipeline started, and how the attempt ended. Counting rows whose
  ``pipeline_started_at`` is set counts real pipeline starts, however often Redis
  delivered the message.
- ``task_parts``: the parts of a split export (``tasks.split``), written in the same
  transaction as the part tasks themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .store import TaskStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS task_messages (
    task_id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    sent_at REAL NOT NULL,
    due_at REAL NOT NULL,
    sends INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS task_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    message_id TEXT,
    worker_id TEXT NOT NULL,
    redelivered INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    claimed INTEGER NOT NULL,
    attempt INTEGER,
    pipeline_started_at REAL,
    ended_at REAL,
    outcome TEXT,
    cancel_checks INTEGER,
    last_clear_check_at REAL,
    cancel_seen_at REAL
);
CREATE INDEX IF NOT EXISTS task_deliveries_task ON task_deliveries (task_id, seq);
CREATE TABLE IF NOT EXISTS task_parts (
    parent_id TEXT NOT NULL,
    part_no INTEGER NOT NULL,
    task_id TEXT NOT NULL UNIQUE,
    rows_planned INTEGER NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (parent_id, part_no)
);
"""


def ensure_schema(tasks: TaskStore) -> None:
    """Create the side tables when missing (once per store object)."""
    tasks.create_tables(SCHEMA)


@dataclass(frozen=True)
class MessageRecord:
    """The last message sent for a task."""

    task_id: str
    message_id: str
    sent_at: float
    due_at: float
    sends: int


def last_message(tasks: TaskStore, task_id: str) -> MessageRecord | None:
    rows = tasks.read("SELECT * FROM task_messages WHERE task_id = ?", (task_id,))
    if not rows:
        return None
    row = rows[0]
    return MessageRecord(row["task_id"], row["message_id"], row["sent_at"], row["due_at"],
                         row["sends"])  # fmt: skip


def reserve_send(
    tasks: TaskStore,
    task_id: str,
    message_id: str,
    previous: MessageRecord | None,
    *,
    now: float,
    due_at: float,
) -> bool:
    """Take the right to send a new message for the task (compare-and-set).

    Noted before the message is sent, so that a sweep running meanwhile sees it. Several
    senders may find the same task at once (a submit and sweeps); only the one whose view
    of the last message is still current wins, so one message is sent, not one each.
    """
    params: dict[str, Any] = {"id": task_id, "message": message_id, "now": now, "due": due_at}
    with tasks.transaction() as con:
        if previous is None:
            cursor = con.execute(
                "INSERT INTO task_messages (task_id, message_id, sent_at, due_at) "
                "VALUES (:id, :message, :now, :due) ON CONFLICT (task_id) DO NOTHING",
                params,
            )
        else:
            cursor = con.execute(
                "UPDATE task_messages SET message_id = :message, sent_at = :now, "
                "due_at = :due, sends = sends + 1 WHERE task_id = :id AND message_id = :old",
                {**params, "old": previous.message_id},
            )
        return cursor.rowcount == 1


def note_send(con: Any, task_id: str, message_id: str, now: float) -> None:
    """Note a message about to be sent, inside the caller's transaction (that also queues
    the task), so no sweep can see the task without it; send it after the commit."""
    con.execute(
        "INSERT INTO task_messages (task_id, message_id, sent_at, due_at) "
        "VALUES (:id, :message, :now, :now) ON CONFLICT (task_id) DO UPDATE SET "
        "message_id = :message, sent_at = :now, due_at = :now, "
        "sends = task_messages.sends + 1",
        {"id": task_id, "message": message_id, "now": now},
    )


def undo_reserve(
    tasks: TaskStore, task_id: str, message_id: str, previous: MessageRecord | None
) -> None:
    """Forget a reserved send whose message could not be sent, so a later sweep retries."""
    with tasks.transaction() as con:
        if previous is None:
            con.execute(
                "DELETE FROM task_messages WHERE task_id = ? AND message_id = ?",
                (task_id, message_id),
            )
        else:
            con.execute(
                "UPDATE task_messages SET message_id = :old, sent_at = :sent, due_at = :due, "
                "sends = :sends WHERE task_id = :id AND message_id = :message",
                {
                    "old": previous.message_id,
                    "sent": previous.sent_at,
                    "due": previous.due_at,
                    "sends": previous.sends,
                    "id": task_id,
                    "message": message_id,
                },
            )


def record_received(
    tasks: TaskStore,
    *,
    task_id: str,
    message_id: str | None,
    worker_id: str,
    redelivered: bool,
    claimed: bool,
    attempt: int | None,
) -> int:
    """Note a message a worker received; returns the delivery's row id."""
    with tasks.transaction() as con:
        rows = con.execute(
            "INSERT INTO task_deliveries (task_id, message_id, worker_id, redelivered, "
            "received_at, claimed, attempt) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (task_id, message_id, worker_id, int(redelivered), tasks.clock(), int(claimed),
             attempt),
        ).fetchall()  # fmt: skip
    return int(rows[0][0])


def record_pipeline_start(tasks: TaskStore, delivery: int) -> None:
    with tasks.transaction() as con:
        con.execute(
            "UPDATE task_deliveries SET pipeline_started_at = ? WHERE seq = ?",
            (tasks.clock(), delivery),
        )


def record_end(tasks: TaskStore, delivery: int, outcome: str, checks: dict[str, Any]) -> None:
    """Note how the delivery's attempt ended, with its cancel-check figures."""
    with tasks.transaction() as con:
        con.execute(
            "UPDATE task_deliveries SET ended_at = :now, outcome = :outcome, "
            "cancel_checks = :checks, last_clear_check_at = :clear, cancel_seen_at = :seen "
            "WHERE seq = :seq",
            {
                "now": tasks.clock(),
                "outcome": outcome,
                "checks": checks.get("checks"),
                "clear": checks.get("last_clear_check_at"),
                "seen": checks.get("cancel_seen_at"),
                "seq": delivery,
            },
        )


def deliveries(tasks: TaskStore, task_id: str) -> list[dict[str, Any]]:
    """Every delivery of the task's messages, oldest first, as dicts."""
    rows = tasks.read("SELECT * FROM task_deliveries WHERE task_id = ? ORDER BY seq", (task_id,))
    return [dict(row) for row in rows]
