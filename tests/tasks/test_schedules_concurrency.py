"""Two schedulers on one store create exactly one task per due instant: two threads with
their own connections ticking in lock step, and two real processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from marketexport.request import build_request
from marketexport.tasks.cron import parse_cron
from marketexport.tasks.scheduler import Scheduler
from marketexport.tasks.schedules import ScheduleStore
from marketexport.tasks.store import TaskStore
from tests.conftest import REPO

# The Berlin fall-back day, with schedules in three zones.
START = datetime(2024, 10, 26, 21, 50, tzinfo=UTC)
END = datetime(2024, 10, 27, 23, 10, tzinfo=UTC)
SCHEDULES = [
    ("berlin-hourly", "@hourly", "Europe/Berlin", "previous-hour"),
    ("berlin-0230", "30 2 * * *", "Europe/Berlin", "previous-day"),
    ("newyork-half-hourly", "*/30 * * * *", "America/New_York", "last:30m"),
    ("sydney-daily", "@daily", "Australia/Sydney", "previous-day"),
]


def add_schedules(path: Path | str) -> dict[str, int]:
    """Create the schedules at START; returns the number of instants each has until END."""
    tasks = TaskStore(path, clock=lambda: START.timestamp())
    schedules = ScheduleStore(tasks)
    request = build_request(dataset="ohlcv", format="parquet", symbols=["BTC/USDT"])
    expected = {}
    for name, cron, zone, window in SCHEDULES:
        schedules.add(name, cron=cron, tz=zone, request=request, window=window)
        expected[schedules.get(name).id] = len(parse_cron(cron, zone).between(START, END))
    tasks.close()
    return expected


def tasks_per_instant(path: Path | str) -> Counter[tuple[str, int]]:
    tasks = TaskStore(path)
    rows = tasks.read("SELECT schedule_id, scheduled_for_ns FROM tasks")
    tasks.close()
    return Counter((row[0], row[1]) for row in rows)


def assert_one_task_per_instant(path: Path | str, expected: dict[str, int]) -> None:
    counts = tasks_per_instant(path)
    assert set(counts.values()) == {1}
    per_schedule = Counter(schedule_id for schedule_id, _ in counts)
    assert per_schedule == expected
    assert expected[next(i for i in expected if i.startswith("berlin-hourly"))] == 26


@pytest.mark.slow
def test_two_scheduler_threads_with_their_own_connections(task_store_where: Path | str) -> None:
    path = task_store_where
    expected = add_schedules(path)
    step = timedelta(seconds=150)
    barrier = threading.Barrier(2)
    created: list[int] = [0, 0]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        now = [START.timestamp()]
        tasks = TaskStore(path, clock=lambda: now[0])
        scheduler = Scheduler(ScheduleStore(tasks))
        try:
            while now[0] < END.timestamp():
                now[0] += step.total_seconds()
                barrier.wait(timeout=30)  # both tick the same simulated moment together
                created[index] += sum(run.created for run in scheduler.tick())
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            barrier.abort()
        finally:
            tasks.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert_one_task_per_instant(path, expected)
    assert sum(created) == sum(expected.values())


@pytest.mark.slow
def test_two_scheduler_processes_on_one_store(tmp_path: Path, task_store_where: Path | str) -> None:
    path = task_store_where
    expected = add_schedules(path)
    go = tmp_path / "go"
    processes = []
    for index in range(2):
        ready = tmp_path / f"ready{index}"
        command = [
            sys.executable,
            "-m",
            "tests.tasks.scheduler_process",
            str(path),
            START.isoformat(),
            END.isoformat(),
            "150",
            str(ready),
            str(go),
        ]
        processes.append(
            (ready, subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True))
        )

    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in processes):
        assert time.monotonic() < deadline, "scheduler processes did not start"
        time.sleep(0.01)
    go.touch()
    outputs = [process.communicate(timeout=300)[0] for _, process in processes]

    assert [process.returncode for _, process in processes] == [0, 0]
    created = [int(output.strip()) for output in outputs]
    assert_one_task_per_instant(path, expected)
    assert sum(created) == sum(expected.values())
