"""The Celery application of marketexport: Redis as the broker, the task store as the truth.

Celery only carries messages that name a task id. Whether and how a task runs is decided
in the task store: a worker claims the task there (compare-and-set) before any work, so
a message delivered twice, late or after a cancel makes the copy exit without work.

Settings behind the guarantees (docs/celery.md):

- ``task_acks_late`` and ``task_reject_on_worker_lost``: a message is acknowledged after
  its attempt, so one whose worker died is delivered again;
- ``worker_prefetch_multiplier = 1``: a worker holds no more messages than it runs;
- a visibility timeout longer than the time limit, so Redis does not hand a running
  task's message to a second worker (the lease stops that copy if it does anyway);
- no result backend: results, progress and errors live in the task store.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery import Task as CeleryTask

from ..config import Settings

RUN_TASK = "marketexport.run_task"

_apps: dict[tuple[Any, ...], Celery] = {}
_apps_lock = threading.Lock()


def restore_interval_s(settings: Settings) -> float:
    """How often a worker looks for unacknowledged messages past the visibility timeout."""
    return float(min(10.0, max(1.0, settings.celery_visibility_timeout_s / 4)))


def make_app(settings: Settings) -> Celery:
    """A Celery app over the settings' Redis, with the executor's one task registered."""
    app = Celery("marketexport", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.celery_task_time_limit_s,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout_s,
            "global_keyprefix": settings.celery_key_prefix,
            "unacked_restore_interval": restore_interval_s(settings),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5,
            "socket_timeout": 30,
        },
        # A submit while Redis is down fails fast; the task stays pending and a sweep
        # sends its message later (tasks.executor).
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        control_queue_ttl=10,
        control_queue_expires=30,
    )
    app.task(name=RUN_TASK, bind=True)(run_task)
    return app


def app_for(settings: Settings) -> Celery:
    """The app for these settings' broker and queue, made once per process."""
    key = (
        settings.redis_url,
        settings.celery_key_prefix,
        settings.celery_queue,
        settings.celery_visibility_timeout_s,
        settings.celery_task_time_limit_s,
    )
    with _apps_lock:
        if key not in _apps:
            _apps[key] = make_app(settings)
        return _apps[key]


def run_task(self: CeleryTask, task_id: str) -> str:
    """Claim the task in the task store and run one attempt of it, or exit without work."""
    from .celery_worker import process_worker

    worker = process_worker()
    delivery = self.request.delivery_info or {}
    claimed = worker.claim(task_id, self.request.id, bool(delivery.get("redelivered")))
    if claimed is None:
        return "skipped"
    worker.run(*claimed)
    return "ran"
