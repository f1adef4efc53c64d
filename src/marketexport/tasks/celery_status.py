"""What ``marketexport celery-status`` shows: Celery's workers and queue beside the task store.

Celery answers which workers are up, what they consume and which messages they run; the
task store answers which tasks are running, where (lease owner ``host:pid:...``, matched
to the worker whose pool holds that pid) and how far they are.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..config import Settings, redact_url
from .celery_app import app_for
from .executor import queue_length
from .model import TaskState, iso_time
from .store import TaskStore


def collect_status(settings: Settings, timeout_s: float) -> dict[str, Any]:
    """Workers, the queue and the task store's pending and running tasks, as JSON-ready data."""
    app = app_for(settings)
    with app.connection_for_write() as connection:
        # One quick try: a broker that is down is reported now, not after kombu's retries.
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2)
    control = app.control
    # Each question waits the whole timeout for replies: ask the three at once.
    with ThreadPoolExecutor(3) as threads:
        answers = [
            threads.submit(lambda name: getattr(control.inspect(timeout=timeout_s), name)(), name)
            for name in ("stats", "active", "active_queues")
        ]
        stats, active, consumed = (answer.result() or {} for answer in answers)
    workers = []
    for node, info in sorted(stats.items()):
        pool = info.get("pool") or {}
        workers.append(
            {
                "name": node,
                "pid": info.get("pid"),
                "concurrency": pool.get("max-concurrency"),
                "processes": list(pool.get("processes") or []),
                "queues": [queue["name"] for queue in consumed.get(node, [])],
                "running": [_task_of(message) for message in active.get(node, [])],
                "messages_handled": sum((info.get("total") or {}).values()),
            }
        )
    tasks = TaskStore.open(settings)
    try:
        running = tasks.list(state=TaskState.RUNNING, limit=1000)
        pending = tasks.count(TaskState.PENDING)
    finally:
        tasks.close()
    return {
        "broker": redact_url(settings.redis_url),
        "workers": workers,
        "queues": [{"name": settings.celery_queue, "waiting": queue_length(settings)}],
        "tasks": {
            "pending": pending,
            "running": [
                {
                    "id": task.id,
                    "export": task.label,
                    "lease_owner": task.lease_owner,
                    "worker": _worker_of(task.lease_owner, workers),
                    "attempt": task.attempts,
                    "percent": task.progress.percent,
                    "rows_done": task.progress.rows_done,
                    "rows_total": task.progress.rows_total,
                    "started_at": iso_time(task.started_at),
                    "cancel_requested": task.cancel_requested,
                }
                for task in running
            ],
        },
    }


def _task_of(message: dict[str, Any]) -> str:
    args = message.get("args") or []
    return str(args[0]) if args else str(message.get("id"))


def _worker_of(lease_owner: str | None, workers: list[dict[str, Any]]) -> str | None:
    """The Celery node whose pool process holds the lease (``host:pid:random``)."""
    if not lease_owner or lease_owner.count(":") < 2:
        return None
    pid_text = lease_owner.rsplit(":", 2)[1]
    if not pid_text.isdigit():
        return None
    for worker in workers:
        if int(pid_text) in worker["processes"] or int(pid_text) == worker["pid"]:
            return str(worker["name"])
    return None


def status_lines(status: dict[str, Any]) -> list[str]:
    """The text ``celery-status`` prints."""
    lines = [f"broker:  {status['broker']}", f"workers: {len(status['workers'])}"]
    for worker in status["workers"]:
        running = ", ".join(task[:8] for task in worker["running"]) or "idle"
        lines.append(
            f"  {worker['name']}  pid {worker['pid']}  concurrency {worker['concurrency']}  "
            f"queues {','.join(worker['queues'])}  running: {running}"
        )
    for queue in status["queues"]:
        lines.append(f"queue:   {queue['name']}: {queue['waiting']} messages waiting")
    tasks = status["tasks"]
    lines.append(f"tasks:   {tasks['pending']} pending, {len(tasks['running'])} running")
    for task in tasks["running"]:
        percent = "?" if task["percent"] is None else f"{task['percent']:.1f}%"
        where = task["worker"] or task["lease_owner"] or "-"
        cancel = " (cancel requested)" if task["cancel_requested"] else ""
        lines.append(
            f"  {task['id']}  {task['export']}  {percent}  attempt {task['attempt']}  "
            f"on {where}{cancel}"
        )
    return lines
