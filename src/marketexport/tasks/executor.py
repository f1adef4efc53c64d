"""Where a queued task goes: the local runner finds it in the task store; Celery needs a message.

:func:`dispatch` is the one hook the CLI, the HTTP API and the scheduler call after they
queue (or re-queue) a task. With ``executor = "local"`` it does nothing: the runner polls
the task store. With ``executor = "celery"`` it sends a message naming the task id.

The task is committed to the task store before the message is sent, and the message only
names it, so a message can never describe a task that does not exist. A message that
cannot be sent (Redis down) is not an error for the caller: the task stays pending and a
worker's sweep (:func:`send_missing`) sends it later. Sending twice is harmless: the
claim in the task store is compare-and-set, so a second copy exits without work.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from ..config import Settings
from .messages import (
    MessageRecord,
    ensure_schema,
    last_message,
    reserve_send,
    undo_reserve,
)
from .model import Task, TaskState
from .store import TaskStore

logger = logging.getLogger(__name__)

# Most pending tasks one sweep looks at; the rest wait for the next sweep.
SWEEP_LIMIT = 1000


def new_message_id(task_id: str) -> str:
    """A Celery message id that starts with the task id, so Celery's own log lines name it."""
    return f"{task_id}.{secrets.token_hex(4)}"


def dispatch(settings: Settings, tasks: TaskStore, task: Task) -> Task:
    """Tell the executor about a task just queued; returns the task unchanged."""
    if settings.executor != "celery" or task.state != TaskState.PENDING:
        return task
    now = tasks.clock()
    due_at = max(now, task.not_before or now)
    send_message(settings, tasks, task.id, countdown_s=due_at - now)
    return task


def send_message(
    settings: Settings, tasks: TaskStore, task_id: str, *, countdown_s: float = 0.0
) -> bool:
    """Send a message for the task, due in ``countdown_s``; False if none was sent.

    The send is noted first (compare-and-set on the last one noted), so that a sweep
    running meanwhile neither sends a second message nor misses a failed one.
    """
    ensure_schema(tasks)  # the first submit may come before any worker made the tables
    previous = last_message(tasks, task_id)
    now = tasks.clock()
    message_id = new_message_id(task_id)
    due_at = now + max(0.0, countdown_s)
    if not reserve_send(tasks, task_id, message_id, previous, now=now, due_at=due_at):
        return False  # a sweep sent one just now
    if not _publish(settings, task_id, message_id, countdown_s):
        undo_reserve(tasks, task_id, message_id, previous)
        return False
    return True


def send_noted(settings: Settings, tasks: TaskStore, task_id: str, message_id: str) -> bool:
    """Send a message already noted with ``messages.note_send``; forget the note if it fails."""
    if _publish(settings, task_id, message_id, 0.0):
        return True
    undo_reserve(tasks, task_id, message_id, None)
    return False


def _publish(settings: Settings, task_id: str, message_id: str, countdown_s: float) -> bool:
    from .celery_app import RUN_TASK, app_for

    try:
        app_for(settings).send_task(
            RUN_TASK,
            args=[task_id],
            task_id=message_id,
            queue=settings.celery_queue,
            countdown=countdown_s if countdown_s > 0 else None,
        )
    except Exception as exc:  # kombu and redis-py raise many kinds; all mean "not sent"
        logger.warning(
            "task %s: no message sent to Celery (%s: %s); it stays pending and a worker's "
            "sweep sends it when the broker answers",
            task_id, type(exc).__name__, exc, extra={"task_id": task_id},
        )  # fmt: skip
        return False
    logger.debug("task %s: message %s sent", task_id, message_id, extra={"task_id": task_id})
    return True


def send_missing(
    settings: Settings, tasks: TaskStore, queue_is_empty: Callable[[], bool]
) -> list[str]:
    """Send a message for every pending, due task that has no live one; returns their ids.

    A task needs one when no message was ever sent for it, when it became pending again
    after its last message (a dead worker's task, a retried task), or when its last
    message is older than ``celery_redispatch_s`` while the queue is empty (the message
    was lost: Redis restarted without persistence, a worker held it and died).
    """
    now = tasks.clock()
    rows = tasks.read(
        "SELECT t.id, t.updated_at, m.message_id, m.sent_at, m.due_at, m.sends "
        "FROM tasks t LEFT JOIN task_messages m ON m.task_id = t.id "
        "WHERE t.state = 'pending' AND (t.not_before IS NULL OR t.not_before <= ?) "
        "ORDER BY t.priority DESC, t.seq LIMIT ?",
        (now, SWEEP_LIMIT),
    )
    sent: list[str] = []
    empty: bool | None = None
    for row in rows:
        previous = None
        if row["message_id"] is not None:
            previous = MessageRecord(
                row["id"], row["message_id"], row["sent_at"], row["due_at"], row["sends"]
            )
        if previous is not None and previous.sent_at >= row["updated_at"]:
            if now - max(previous.sent_at, previous.due_at) < settings.celery_redispatch_s:
                continue
            if empty is None:
                empty = queue_is_empty()
            if not empty:
                continue
        if _resend(settings, tasks, row["id"], previous, now):
            sent.append(row["id"])
    return sent


def _resend(
    settings: Settings, tasks: TaskStore, task_id: str, previous: MessageRecord | None, now: float
) -> bool:
    message_id = new_message_id(task_id)
    if not reserve_send(tasks, task_id, message_id, previous, now=now, due_at=now):
        return False  # another sender got there first
    if not _publish(settings, task_id, message_id, 0.0):
        undo_reserve(tasks, task_id, message_id, previous)
        return False
    why = "it had none" if previous is None else "its last one is gone or stale"
    logger.info("task %s queued: message sent because %s", task_id, why,
                extra={"task_id": task_id})  # fmt: skip
    return True


def queue_length(settings: Settings) -> int:
    """Messages waiting in the executor's queue (not yet delivered to a worker)."""
    from kombu.exceptions import ChannelError

    from .celery_app import app_for

    with app_for(settings).connection_for_write() as connection:
        channel = connection.default_channel
        try:
            declared = channel.queue_declare(settings.celery_queue, passive=True)
        except ChannelError:  # Redis keeps no empty list: an empty queue is "not found"
            return 0
        return int(declared.message_count)
