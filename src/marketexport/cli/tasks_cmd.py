"""``marketexport tasks ...`` and ``marketexport run-worker``: exports as queued tasks."""

from __future__ import annotations

import logging
import re
import signal
import time
from types import FrameType
from typing import Any

import click

from ..errors import RequestError
from ..export.encryption import KeyRing, check_key_names
from ..export.pipeline import Progress
from ..tasks.executor import dispatch
from ..tasks.model import (
    DEFAULT_OWNER,
    MAX_PRIORITY,
    MIN_PRIORITY,
    Task,
    TaskState,
    check_priority,
    check_state,
    iso_time,
)
from ..tasks.runner import Runner
from ..tasks.scheduler import scheduler_hooks
from ..tasks.stats import task_stats
from ..tasks.store import TaskStore
from . import AppContext, pass_app
from .export_cmd import export_options, request_from_options
from .output import export_progress, is_terminal, print_json
from .split_options import split_body, split_options

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> float:
    """'90s', '30m', '24h', '7d' or plain seconds -> seconds."""
    match = _WINDOW.match(text)
    if not match or float(match[1]) <= 0:
        raise RequestError(
            f"invalid window {text!r} (expected a positive number with s, m, h or d, e.g. 24h)",
            value=text,
        )
    return float(match[1]) * _UNIT_S[match[2]]


def open_tasks(app: AppContext) -> TaskStore:
    return TaskStore.open(app.settings)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{count} B"


def progress_text(task: Task) -> str:
    progress = task.progress
    total = "?" if progress.rows_total is None else f"{progress.rows_total:,}"
    percent = "" if progress.percent is None else f" ({progress.percent:.1f}%)"
    text = f"{progress.rows_done:,} / {total} rows{percent}, {_size(progress.bytes_written)}"
    if task.state == TaskState.RUNNING and progress.rows_per_s:
        text += f", {progress.rows_per_s:,.0f} rows/s"
        if progress.eta_s is not None:
            text += f", ETA {progress.eta_s:,.0f} s"
    return text


def describe(task: Task) -> list[str]:
    """The lines ``tasks show`` prints."""
    lines = [
        f"task {task.id}",
        f"  state:    {task.state.value}" + (" (cancel requested)" if _cancelling(task) else ""),
        f"  owner:    {task.owner}",
        f"  export:   {task.label}",
        f"  progress: {progress_text(task)}",
        f"  attempts: {task.attempts}/{task.max_attempts}   priority: {task.priority}",
        f"  created:  {iso_time(task.created_at)}",
    ]
    if task.started_at is not None:
        lines.append(f"  started:  {iso_time(task.started_at)}")
    if task.finished_at is not None:
        # A task cancelled while pending ends without having started: no run time.
        ran = "" if task.duration_s is None else f" ({task.duration_s:.2f} s)"
        lines.append(f"  finished: {iso_time(task.finished_at)}{ran}")
    if task.not_before is not None and task.state == TaskState.PENDING:
        lines.append(f"  next try: {iso_time(task.not_before)}")
    if task.result:
        lines.append(f"  file:     {task.result['path']}")
        lines.append(f"  sha256:   {task.result['file_sha256']}")
    if task.error:
        retry = "a retry may help" if task.error.retryable else "a retry will not help"
        lines.append(f"  error:    {task.error.kind}: {task.error.message} ({retry})")
    return lines


def _cancelling(task: Task) -> bool:
    return task.cancel_requested and not task.is_terminal


@click.group("tasks")
def tasks_group() -> None:
    """Export tasks: submit, list, show, cancel, retry, stats (run them with run-worker)."""


@tasks_group.command("submit")
@export_options
@click.option(
    "--priority",
    type=int,
    default=0,
    show_default=True,
    help=f"Higher runs first ({MIN_PRIORITY} to {MAX_PRIORITY}).",
)
@click.option("--owner", default=DEFAULT_OWNER, show_default=True, help="Owner of the task.")
@click.option("--max-attempts", type=click.IntRange(1, 100), help="Runs before giving up.")
@split_options
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@pass_app
def submit_command(
    app: AppContext,
    /,
    priority: int,
    owner: str,
    max_attempts: int | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Queue an export of DATASET (same arguments as export) and print the task id."""
    check_priority(priority)
    request = request_from_options(options)
    check_key_names(request.encryption, request.sign_key, KeyRing.from_settings(app.settings))
    body = split_body(app.settings, request, options)
    attempts = max_attempts or app.settings.task_max_attempts
    store = open_tasks(app)
    try:
        task = store.submit(body, owner=owner, priority=priority, max_attempts=attempts)
        dispatch(app.settings, store, task)
    finally:
        store.close()
    if as_json:
        print_json(task.to_dict())
    else:
        click.echo(task.id)


@tasks_group.command("list")
@click.option("--state", help="Only tasks in this state (pending, running, completed...).")
@click.option("--owner", help="Only this owner's tasks.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def list_command(
    app: AppContext, state: str | None, owner: str | None, limit: int, as_json: bool
) -> None:
    """List tasks, newest first."""
    wanted = check_state(state) if state is not None else None
    store = open_tasks(app)
    try:
        tasks = store.list(state=wanted, owner=owner, limit=limit)
    finally:
        store.close()
    if as_json:
        print_json([task.to_dict() for task in tasks])
        return
    for task in tasks:
        percent = task.progress.percent
        shown = "" if percent is None else f"{percent:5.1f}%"
        click.echo(
            f"{task.id}  {task.state.value:<9} {shown:>6}  {task.owner:<12} "
            f"{task.label:<24} {iso_time(task.created_at)}"
        )


@tasks_group.command("show")
@click.argument("task_id")
@click.option("--follow", is_flag=True, help="Watch the task until it ends (progress bar).")
@click.option("--interval", type=float, default=0.5, show_default=True, help="Poll seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@pass_app
def show_command(
    app: AppContext, task_id: str, follow: bool, interval: float, as_json: bool
) -> int:
    """Show one task (a unique id prefix of 6+ characters will do)."""
    store = open_tasks(app)
    try:
        task = store.find(task_id)
        if follow:
            task = follow_task(store, task, interval, bar=is_terminal() and not as_json)
    finally:
        store.close()
    if as_json:
        print_json(task.to_dict())
    else:
        click.echo("\n".join(describe(task)))
    if follow and task.state != TaskState.COMPLETED:
        return 1
    return 0


def follow_task(store: TaskStore, task: Task, interval_s: float, *, bar: bool) -> Task:
    """Poll the task store until the task ends, drawing a progress bar on a terminal."""
    with export_progress(f"task {task.id[:8]} {task.label}", enabled=bar) as update:
        while True:
            if update is not None:
                progress = task.progress
                update(
                    Progress(
                        progress.rows_done,
                        progress.rows_total or 0,
                        progress.bytes_written,
                        task.duration_s or 0.0,
                    )
                )
            if task.is_terminal:
                return task
            time.sleep(interval_s)
            task = store.get(task.id)


@tasks_group.command("cancel")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@pass_app
def cancel_command(app: AppContext, task_id: str, as_json: bool) -> None:
    """Cancel a task: a pending one at once, a running one at its next batch."""
    store = open_tasks(app)
    try:
        task = store.request_cancel(store.find(task_id).id)
    finally:
        store.close()
    if as_json:
        print_json(task.to_dict())
    elif task.state == TaskState.CANCELLED:
        click.echo(f"{task.id} cancelled")
    else:
        click.echo(f"{task.id} cancel requested; it stops at its next batch")


@tasks_group.command("retry")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@pass_app
def retry_command(app: AppContext, task_id: str, as_json: bool) -> None:
    """Put a failed or cancelled task back in the queue."""
    store = open_tasks(app)
    try:
        task = dispatch(app.settings, store, store.retry(store.find(task_id).id))
    finally:
        store.close()
    if as_json:
        print_json(task.to_dict())
    else:
        click.echo(f"{task.id} queued again")


@tasks_group.command("stats")
@click.option("--window", default="24h", show_default=True, help="Recent window: 30m, 24h, 7d.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def stats_command(app: AppContext, window: str, as_json: bool) -> None:
    """Counts per state, queue, totals, and mean duration and failure rate of the window."""
    window_s = parse_window(window)
    store = open_tasks(app)
    try:
        stats = task_stats(store, window_s)
    finally:
        store.close()
    if as_json:
        print_json(stats.to_dict())
        return
    counts = ", ".join(f"{name} {count}" for name, count in stats.by_state.items())
    rate = "n/a" if stats.failure_rate is None else f"{100 * stats.failure_rate:.1f}%"
    mean = "n/a" if stats.mean_duration_s is None else f"{stats.mean_duration_s:.2f} s"
    click.echo(f"tasks:    {counts}")
    click.echo(f"queue:    {stats.queue_length} pending ({stats.due_now} due now)")
    click.echo(f"running:  {stats.running}")
    click.echo(f"exported: {stats.rows_exported:,} rows, {_size(stats.bytes_exported)}")
    click.echo(f"retries:  {stats.retries}")
    click.echo(
        f"last {window}: {stats.window_completed} completed, {stats.window_failed} failed, "
        f"{stats.window_cancelled} cancelled; mean duration {mean}; failure rate {rate}"
    )


@click.command("run-worker")
@click.option("--concurrency", type=click.IntRange(1, 256), help="Tasks run at once.")
@click.option("--until-idle", is_flag=True, help="Exit when no task is pending or running.")
@click.option(
    "--grace-s",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="On SIGTERM/SIGINT, seconds running tasks get to finish before being re-queued.",
)
@pass_app
def run_worker_command(
    app: AppContext, concurrency: int | None, until_idle: bool, grace_s: float
) -> None:
    """Run queued export tasks in the foreground until SIGTERM or SIGINT."""
    tasks_logger = logging.getLogger("marketexport.tasks")
    level_before = tasks_logger.level
    if tasks_logger.getEffectiveLevel() > logging.INFO:
        tasks_logger.setLevel(logging.INFO)
    store = open_tasks(app)
    runner = Runner(app.settings, store, concurrency=concurrency)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # The first signal lets running tasks finish (up to --grace-s); a second one
        # stops them at their next batch and puts them back in the queue.
        again = runner.stopping
        logging.getLogger(__name__).warning(
            "%s: %s", signal.Signals(signum).name,
            "re-queueing running tasks now" if again else "finishing running tasks",
        )  # fmt: skip
        runner.stop(now=again)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    # Schedules create their tasks from inside the worker (docs/schedules.md).
    hooks = list(scheduler_hooks(app.settings, store))
    try:
        for start, _ in hooks:
            start()
        runner.run(until_idle=until_idle, grace_s=grace_s)
    finally:
        for _, stop in hooks:
            stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        tasks_logger.setLevel(level_before)
        store.close()


def register(cli: click.Group) -> None:
    cli.add_command(tasks_group)
    cli.add_command(run_worker_command)
