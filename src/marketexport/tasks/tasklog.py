"""Worker logs that name the task on every line.

A filter on the worker's log handler gives every record a ``task_id`` field: the one the
record was logged with (``extra={"task_id": ...}``), else the task the current thread is
running (:func:`task_context`), else the task named in a Celery line about a message
(message ids start with the task id, see ``executor.new_message_id``), else ``-``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

current_task_id: ContextVar[str | None] = ContextVar("marketexport_task_id", default=None)

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s task=%(task_id)s %(name)s: %(message)s"
_MESSAGE_ID = re.compile(r"\b([0-9a-f]{32})\.[0-9a-f]{8}\b")
_MARK = "_marketexport_worker_handler"


@contextmanager
def task_context(task_id: str) -> Iterator[None]:
    """Lines logged by this thread inside the block carry ``task_id``."""
    token = current_task_id.set(task_id)
    try:
        yield
    finally:
        current_task_id.reset(token)


class TaskIdFilter(logging.Filter):
    """Adds ``task_id`` to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "task_id", None):
            return True
        task_id = current_task_id.get()
        if task_id is None and record.name.startswith("celery"):
            found = _MESSAGE_ID.search(record.getMessage())
            task_id = found[1] if found else None
        record.task_id = task_id or "-"
        return True


def configure_worker_logging(level: int | str = logging.INFO, logfile: Path | None = None) -> None:
    """One handler on the root logger with the task-id format; calling again replaces it.

    The worker process owns its logging: handlers set up before (the CLI's) are replaced.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if getattr(old, _MARK, False):
            old.close()
    handler: logging.Handler = (
        logging.FileHandler(logfile, encoding="utf-8")
        if logfile is not None
        else logging.StreamHandler(sys.stderr)
    )
    setattr(handler, _MARK, True)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(TaskIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
