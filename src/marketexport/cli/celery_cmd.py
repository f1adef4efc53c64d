"""``marketexport celery-worker``, ``celery-beat`` and ``celery-status``: the Celery executor."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ..config import Settings, redact_url
from ..errors import BrokerError, ConfigError, ExportError
from ..tasks.store import TaskStore
from . import AppContext, pass_app
from .output import print_json

logger = logging.getLogger(__name__)


def require_celery(settings: Settings) -> Settings:
    if settings.executor != "celery":
        raise ConfigError(
            f"the executor is {settings.executor!r}; Celery commands need executor = "
            '"celery" (MARKETEXPORT_EXECUTOR=celery or executor in marketexport.toml), '
            "or run the local runner with `marketexport run-worker`",
            setting="executor",
        )
    return settings


@click.command("celery-worker")
@click.option(
    "--concurrency", type=click.IntRange(1, 256), help="Exports at once (default CONCURRENCY)."
)
@click.option("--queues", "-Q", help="Comma-separated queues to consume (default CELERY_QUEUE).")
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo"]),
    default="prefork",
    show_default=True,
    help="prefork: each export in a pool process; solo: one at a time in the worker itself.",
)
@click.option("--hostname", "-n", help="Node name (default marketexport-<pid>@<host>).")
@click.option("--scheduler", is_flag=True, help="Also run the schedule loop (several are safe).")
@click.option("--no-sweep", is_flag=True, help="Run no sweeps here (another worker or beat does).")
@click.option("--loglevel", default="INFO", show_default=True, help="DEBUG, INFO, WARNING...")
@click.option("--logfile", type=click.Path(path_type=Path, dir_okay=False), help="Log to a file.")
@pass_app
def celery_worker_command(
    app: AppContext,
    concurrency: int | None,
    queues: str | None,
    pool: str,
    hostname: str | None,
    scheduler: bool,
    no_sweep: bool,
    loglevel: str,
    logfile: Path | None,
) -> int:
    """Run a Celery worker over Redis that runs queued exports (until SIGTERM)."""
    from celery.signals import setup_logging, worker_ready

    from ..tasks.celery_app import app_for
    from ..tasks.celery_worker import configure_worker
    from ..tasks.sweeper import start_helper
    from ..tasks.tasklog import configure_worker_logging

    settings = require_celery(app.settings)
    processes = concurrency or settings.concurrency
    configure_worker_logging(loglevel.upper(), logfile)
    # Celery configures no logging of its own: the handler above stays, with its task ids.
    setup_logging.connect(lambda **_: None, weak=False)
    configure_worker(settings, processes)
    node = hostname or f"marketexport-{os.getpid()}@{socket.gethostname()}"
    consumed = [q.strip() for q in (queues or settings.celery_queue).split(",") if q.strip()]

    def on_ready(**_: Any) -> None:
        logger.info(
            "celery worker %s ready: queues=%s concurrency=%d pool=%s broker=%s",
            node, ",".join(consumed), processes, pool, redact_url(settings.redis_url),
        )  # fmt: skip

    worker_ready.connect(on_ready, weak=False)
    if settings.celery_visibility_timeout_s <= settings.celery_task_time_limit_s:
        logger.warning(
            "celery_visibility_timeout_s (%d) is not above celery_task_time_limit_s (%d): "
            "Redis will hand a long export's message to a second worker, whose copy then "
            "finds the task leased and exits without work",
            settings.celery_visibility_timeout_s, settings.celery_task_time_limit_s,
        )  # fmt: skip
    helper = None if no_sweep else start_helper(settings, with_scheduler=scheduler, logfile=logfile)
    try:
        worker = app_for(settings).Worker(
            hostname=node,
            concurrency=processes,
            queues=consumed,
            pool_cls=pool,
            loglevel=loglevel.upper(),
            quiet=True,
            without_mingle=True,
            without_gossip=True,
            optimization="fair",
        )
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        if helper is not None and helper.is_alive():
            helper.terminate()
            helper.join(10)


@click.command("celery-beat")
@click.option("--no-scheduler", is_flag=True, help="Only sweep; schedules fire elsewhere.")
@click.option("--loglevel", default="INFO", show_default=True, help="DEBUG, INFO, WARNING...")
@click.option("--logfile", type=click.Path(path_type=Path, dir_okay=False), help="Log to a file.")
@pass_app
def celery_beat_command(
    app: AppContext, no_scheduler: bool, loglevel: str, logfile: Path | None
) -> None:
    """Fire schedules and sweep the task store for Celery (until SIGTERM or SIGINT).

    Schedules create their tasks through the task store's unique (schedule, instant) key,
    so any number of beat processes and `celery-worker --scheduler` create one task per
    instant.
    """
    from ..tasks.scheduler import scheduler_hooks
    from ..tasks.sweeper import Sweeper
    from ..tasks.tasklog import configure_worker_logging

    settings = require_celery(app.settings)
    configure_worker_logging(loglevel.upper(), logfile)
    tasks = TaskStore.open(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    hooks = [] if no_scheduler else list(scheduler_hooks(settings, tasks))
    try:
        for start, _ in hooks:
            start()
        Sweeper(settings, tasks).run(stop)
    finally:
        for _, stop_hook in hooks:
            stop_hook()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        tasks.close()


@click.command("celery-status")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=2.0, show_default=True,
              help="Seconds to wait for workers to answer.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def celery_status_command(app: AppContext, timeout: float, as_json: bool) -> None:
    """Workers, queues and running tasks: Celery's answers beside the task store's."""
    from ..tasks.celery_status import collect_status, status_lines

    settings = require_celery(app.settings)
    try:
        status = collect_status(settings, timeout)
    except ExportError:
        raise
    except Exception as exc:  # kombu and redis-py: the broker is down or refuses
        raise BrokerError(
            f"the Redis broker at {redact_url(settings.redis_url)} did not answer: "
            f"{type(exc).__name__}: {exc}",
            url=redact_url(settings.redis_url),
        ) from None
    if as_json:
        print_json(status)
    else:
        click.echo("\n".join(status_lines(status)))


def register(cli: click.Group) -> None:
    cli.add_command(celery_worker_command)
    cli.add_command(celery_beat_command)
    cli.add_command(celery_status_command)
