"""Schedules on Celery: two `celery-beat` processes and a `celery-worker --scheduler` fire
the same schedule store, and each due instant still gets exactly one task, run once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketexport.request import build_request
from marketexport.tasks.cron import parse_cron
from marketexport.tasks.messages import last_message
from marketexport.tasks.model import TaskState
from marketexport.tasks.schedules import ScheduleStore
from marketexport.tasks.store import TaskStore
from tests.tasks.celery_helpers import (
    T0_NS,
    CeleryRun,
    build_days,
    delete_prefix,
    pipeline_starts,
    redis_client,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

# The schedule was made this long ago, so its missed instants (misfire "all") are all due.
BACKFILL_S = 6 * 60


@pytest.fixture
def run(tmp_path: Path) -> Iterator[CeleryRun]:
    redis_client()
    store = tmp_path / "store.duckdb"
    build_days(store, 0.25, 60, ("BTC/USDT",))
    deployment = CeleryRun(tmp_path / "data", store, tmp_path / "logs")
    yield deployment
    deployment.stop_all()
    delete_prefix(deployment.prefix)


def test_three_schedulers_on_celery_create_one_task_per_instant(run: CeleryRun) -> None:
    made_at = time.time() - BACKFILL_S
    past = TaskStore(run.data_dir / "tasks.sqlite3", clock=lambda: made_at)
    request = build_request(dataset="ohlcv", format="csv", end=f"{T0_NS + 3_600 * 10**9}ns")
    schedule = ScheduleStore(past).add(
        "every-minute", cron="* * * * *", request=request, misfire="all", misfire_cap=100
    )
    past.close()
    cron = parse_cron("* * * * *", "UTC")
    due_at_start = cron.between(datetime.fromtimestamp(made_at, UTC), datetime.now(UTC))

    run.start_beat()
    run.start_beat()
    run.start_worker("--scheduler")
    run.start_worker()
    tasks = run.tasks()

    def instants() -> Counter[int]:
        rows = tasks.read(
            "SELECT scheduled_for_ns FROM tasks WHERE schedule_id = ?", (schedule.id,)
        )
        return Counter(row[0] for row in rows)

    wanted = {int(moment.timestamp()) * 10**9 for moment in due_at_start}
    wait_until(lambda: wanted <= set(instants()), 60)
    wait_until(lambda: tasks.count(TaskState.PENDING, TaskState.RUNNING) == 0, 90)

    counts = instants()
    due_now = cron.between(datetime.fromtimestamp(made_at, UTC), datetime.now(UTC))
    assert len(due_at_start) >= 5
    assert set(counts.values()) == {1}  # one task per instant, however many schedulers
    assert set(counts) <= {int(moment.timestamp()) * 10**9 for moment in due_now}
    for task in tasks.list(limit=1000):
        assert task.state == TaskState.COMPLETED and task.attempts == 1
        assert pipeline_starts(tasks, task.id) == 1
        assert last_message(tasks, task.id) is not None
    created = run.log_text().count(f"schedule {schedule.name}: task ")
    assert created == len(counts)  # each task was created (and logged) by one scheduler
    tasks.close()
