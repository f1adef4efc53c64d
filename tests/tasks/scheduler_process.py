"""A scheduler process for tests: ticks a simulated span on a shared task store.

Usage: python -m tests.tasks.scheduler_process DB START END STEP_S READY GO
(DB: a SQLite file path or a postgresql:// URL)
It opens its own connection, writes READY once imported, waits for GO to exist (so that
two processes start together), then ticks from START to END (ISO times) every STEP_S
simulated seconds and prints how many tasks it created.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from marketexport.tasks.scheduler import Scheduler
from marketexport.tasks.schedules import ScheduleStore
from marketexport.tasks.store import TaskStore


def main(argv: list[str]) -> int:
    db, start, end, step_s, ready, go = argv
    now = [datetime.fromisoformat(start).timestamp()]
    tasks = TaskStore(db, clock=lambda: now[0])
    scheduler = Scheduler(ScheduleStore(tasks))
    Path(ready).touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.005)

    created = 0
    stop = datetime.fromisoformat(end).timestamp()
    while now[0] < stop:
        now[0] = min(now[0] + float(step_s), stop)
        created += sum(run.created for run in scheduler.tick())
    tasks.close()
    print(created)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
