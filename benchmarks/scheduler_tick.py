"""What the scheduler costs: an idle tick, a tick that creates tasks, and instant previews.

    python benchmarks/scheduler_tick.py [--schedules 200]

With a simulated clock on a temporary task store:
- idle tick: every schedule enabled, none due (the scheduler's steady state);
- busy tick: every schedule due at once, one task each (fsync-bound: the task store
  commits with synchronous=FULL);
- `next_after` for 100 instants of a minutely, an hourly-in-Berlin and a yearly schedule.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from marketexport.request import build_request
from marketexport.tasks.cron import parse_cron
from marketexport.tasks.scheduler import Scheduler
from marketexport.tasks.schedules import ScheduleStore
from marketexport.tasks.store import TaskStore


def measure_ticks(count: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as folder:
        now = [datetime(2024, 5, 1, 7, 0, 30, tzinfo=UTC).timestamp()]
        tasks = TaskStore(Path(folder) / "tasks.sqlite3", clock=lambda: now[0])
        schedules = ScheduleStore(tasks)
        request = build_request(dataset="ohlcv", format="parquet", symbols=["BTC/USDT"])
        for i in range(count):
            schedules.add(f"job{i}", cron="0 10 * * *", tz="Europe/Berlin", request=request,
                          window="previous-day")  # fmt: skip
        scheduler = Scheduler(schedules)

        rounds = 20
        started = time.perf_counter()
        for _ in range(rounds):
            scheduler.tick()
        idle_s = (time.perf_counter() - started) / rounds

        now[0] = datetime(2024, 5, 1, 10, 0, 5, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
        started = time.perf_counter()
        created = len(scheduler.tick())
        busy_s = time.perf_counter() - started
        tasks.close()
    return idle_s, busy_s, created


def measure_previews() -> dict[str, float]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    found = {}
    for label, expression, zone in (
        ("minutely, UTC", "* * * * *", "UTC"),
        ("hourly, Europe/Berlin", "@hourly", "Europe/Berlin"),
        ("yearly, Australia/Sydney", "@yearly", "Australia/Sydney"),
    ):
        cron = parse_cron(expression, zone)
        began = time.perf_counter()
        cron.next_after(start, count=100)
        found[label] = time.perf_counter() - began
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=200)
    count = parser.parse_args().schedules

    idle_s, busy_s, created = measure_ticks(count)
    print(f"idle tick, {count} schedules, none due: {idle_s * 1e6:.0f} µs")
    print(f"busy tick, {count} schedules due at once: {busy_s:.2f} s for {created} tasks "
          f"({busy_s / max(created, 1) * 1000:.1f} ms per task)")  # fmt: skip
    for label, seconds in measure_previews().items():
        print(f"next 100 instants, {label}: {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
