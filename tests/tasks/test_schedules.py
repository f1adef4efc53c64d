"""Schedule store and scheduler tick with an injected clock: one task per due instant,
misfire policies after an outage, pause/resume, run now, and refusals that store nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from marketexport.errors import NotFoundError, RequestError
from marketexport.request import ExportRequest, build_request
from marketexport.tasks.model import Task, TaskProgress
from marketexport.tasks.scheduler import Scheduler
from marketexport.tasks.schedules import ScheduleStore
from marketexport.tasks.store import TaskStore
from marketexport.timeparse import datetime_to_ns, ns_to_iso


class Clock:
    """A settable clock: epoch seconds, moved by the test only."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 5, 1, 9, 59, 30, tzinfo=UTC))


@pytest.fixture
def tasks(task_store_where: Path | str, clock: Clock) -> Iterator[TaskStore]:
    store = TaskStore(task_store_where, clock=clock)
    yield store
    store.close()


@pytest.fixture
def schedules(tasks: TaskStore) -> ScheduleStore:
    return ScheduleStore(tasks)


def candles() -> ExportRequest:
    return build_request(dataset="ohlcv", format="csv", exchanges=["binance"], symbols=["BTC/USDT"])


def scheduled_tasks(tasks: TaskStore) -> list[Task]:
    """Every task, oldest first."""
    return list(reversed(tasks.list(limit=10_000)))


def instants(found: list[Task]) -> list[str]:
    return [ns_to_iso(task.scheduled_for_ns) for task in found if task.scheduled_for_ns]


def run_until(scheduler: Scheduler, clock: Clock, end: datetime, step_s: float = 60) -> None:
    """Tick every ``step_s`` simulated seconds until ``end``."""
    while clock.now < end.timestamp():
        clock.now = min(clock.now + step_s, end.timestamp())
        scheduler.tick()


def test_add_stores_the_schedule_with_its_next_run(schedules: ScheduleStore) -> None:
    added = schedules.add(
        "hourly",
        cron="0 * * * *",
        tz="Europe/Berlin",
        request=candles(),
        window="previous-hour",
        misfire="all",
        misfire_cap=5,
        grace_s=60,
    )

    stored = schedules.get("hourly")
    assert stored == added
    assert stored.next_instant_ns == datetime_to_ns(datetime(2024, 5, 1, 10, tzinfo=UTC))
    assert stored.template["start_ns"] is None and stored.template["symbols"] == ["BTC/USDT"]
    assert stored.id.startswith("hourly@")
    assert [s.name for s in schedules.list()] == ["hourly"]
    assert stored.to_dict()["next_instant"] == "2024-05-01T10:00:00Z"


def count_schedules(tasks: TaskStore) -> int:
    return int(tasks.read("SELECT count(*) FROM schedules")[0][0])


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression '61 * * * *'"),
        ({"cron": "0 0 * * * *"}, "invalid cron expression '0 0 * * * *'"),
        ({"tz": "Europe/Berln"}, "unknown time zone 'Europe/Berln'"),
        ({"window": "between:-5m,-65m"}, "inverted window 'between:-5m,-65m'"),
        ({"window": "last:0h"}, "inverted window 'last:0h'"),
        ({"misfire": "sometimes"}, "unknown misfire policy 'sometimes'"),
        ({"misfire_cap": 0}, "invalid misfire cap 0"),
        ({"grace_s": -1.0}, "invalid grace period -1.0"),
        ({"file_name": "../{instant:%Y}.csv"}, "invalid file name template"),
        ({"owner": "bad owner"}, "invalid owner 'bad owner'"),
    ],
)
def test_invalid_schedules_are_refused_and_nothing_is_stored(
    schedules: ScheduleStore, tasks: TaskStore, changes: dict[str, object], named: str
) -> None:
    arguments: dict[str, object] = {
        "cron": "0 * * * *",
        "request": candles(),
        "window": "previous-hour",
        **changes,
    }

    with pytest.raises(RequestError) as caught:
        schedules.add("job", **arguments)  # type: ignore[arg-type]

    assert named in str(caught.value)
    assert count_schedules(tasks) == 0
    assert tasks.count() == 0


def test_window_and_a_fixed_range_together_are_refused(
    schedules: ScheduleStore, tasks: TaskStore
) -> None:
    fixed = build_request(dataset="ohlcv", format="csv", start="2024-01-01", end="2024-02-01")

    with pytest.raises(RequestError, match="either --window .previous-day. or --start/--end"):
        schedules.add("job", cron="@daily", request=fixed, window="previous-day")

    assert count_schedules(tasks) == 0


def test_bad_names_and_duplicates_are_refused(schedules: ScheduleStore, tasks: TaskStore) -> None:
    schedules.add("job", cron="@daily", request=candles())

    with pytest.raises(RequestError, match="a schedule named 'job' already exists"):
        schedules.add("job", cron="@hourly", request=candles())
    with pytest.raises(RequestError, match="invalid schedule name 'a/b'"):
        schedules.add("a/b", cron="@hourly", request=candles())

    assert count_schedules(tasks) == 1
    assert schedules.get("job").cron == "@daily"


def test_a_simulated_fall_back_day_gives_one_task_per_instant(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    clock.set(datetime(2024, 10, 26, 21, 55, tzinfo=UTC))  # 23:55 in Berlin
    schedules.add(
        "hourly", cron="@hourly", tz="Europe/Berlin", request=candles(), window="previous-hour"
    )
    schedules.add("daily", cron="30 2 * * *", tz="Europe/Berlin", request=candles())
    scheduler = Scheduler(schedules)

    run_until(scheduler, clock, datetime(2024, 10, 27, 23, 0, 30, tzinfo=UTC), step_s=173)

    found = scheduled_tasks(tasks)
    hourly = [t for t in found if t.schedule_id == schedules.get("hourly").id]
    daily = [t for t in found if t.schedule_id == schedules.get("daily").id]
    # 00:00 CEST on the 27th ... 00:00 CET on the 28th: 26 instants, 02:00 twice.
    assert len(hourly) == 26
    assert len({t.scheduled_for_ns for t in hourly}) == 26
    # The 25 runs after midnight export the 25-hour day, hour by hour.
    windows = [(t.request["start_ns"], t.request["end_ns"]) for t in hourly[1:]]
    assert all(end - start == 3600 * 10**9 for start, end in windows)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert windows[0][0] == datetime_to_ns(datetime(2024, 10, 26, 22, tzinfo=UTC))
    assert windows[-1][1] == datetime_to_ns(datetime(2024, 10, 27, 23, tzinfo=UTC))
    assert instants(daily) == ["2024-10-27T00:30:00Z"]  # 02:30 CEST, its first occurrence
    assert schedules.get("hourly").last_instant_ns == hourly[-1].scheduled_for_ns


def outage(
    schedules: ScheduleStore, clock: Clock, policy: str, back_at: datetime, cap: int = 100
) -> Scheduler:
    """Hourly UTC schedule, ticked until 10:00:30, then nothing until ``back_at``."""
    schedules.add(
        "job",
        cron="0 * * * *",
        request=candles(),
        window="previous-hour",
        misfire=policy,
        misfire_cap=cap,
        grace_s=300,
    )
    scheduler = Scheduler(schedules)
    run_until(scheduler, clock, datetime(2024, 5, 1, 10, 0, 30, tzinfo=UTC))
    clock.set(back_at)
    scheduler.tick()
    return scheduler


BACK = datetime(2024, 5, 1, 15, 30, tzinfo=UTC)


def test_misfire_skip_runs_no_missed_instant(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    scheduler = outage(schedules, clock, "skip", BACK)

    assert instants(scheduled_tasks(tasks)) == ["2024-05-01T10:00:00Z"]
    run_until(scheduler, clock, datetime(2024, 5, 1, 16, 1, tzinfo=UTC))
    assert instants(scheduled_tasks(tasks)) == ["2024-05-01T10:00:00Z", "2024-05-01T16:00:00Z"]


def test_misfire_latest_runs_the_newest_missed_instant_with_its_own_window(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    outage(schedules, clock, "latest", BACK)

    found = scheduled_tasks(tasks)
    assert instants(found) == ["2024-05-01T10:00:00Z", "2024-05-01T15:00:00Z"]
    # Run at 15:30 for 15:00: it exports 14:00-15:00, the window of the instant.
    assert (found[-1].request["start"], found[-1].request["end"]) == (
        "2024-05-01T14:00:00Z",
        "2024-05-01T15:00:00Z",
    )


def test_misfire_all_runs_each_missed_instant_oldest_first(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    outage(schedules, clock, "all", BACK)

    found = scheduled_tasks(tasks)
    assert instants(found) == [f"2024-05-01T{hour}:00:00Z" for hour in range(10, 16)]
    assert [t.request["start"][11:13] for t in found[1:]] == ["10", "11", "12", "13", "14"]


def test_misfire_all_keeps_the_newest_runs_up_to_its_cap(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    outage(schedules, clock, "all", BACK, cap=3)

    assert instants(scheduled_tasks(tasks)) == [
        "2024-05-01T10:00:00Z",
        "2024-05-01T13:00:00Z",
        "2024-05-01T14:00:00Z",
        "2024-05-01T15:00:00Z",
    ]


def test_an_instant_within_the_grace_period_runs_under_every_policy(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    # Back at 15:04: 15:00 is 4 minutes late, within the 5-minute grace, so it is on time.
    outage(schedules, clock, "skip", datetime(2024, 5, 1, 15, 4, tzinfo=UTC))

    assert instants(scheduled_tasks(tasks)) == ["2024-05-01T10:00:00Z", "2024-05-01T15:00:00Z"]


def test_a_paused_schedule_creates_nothing_and_resumes_without_backfill(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    schedules.add("job", cron="*/10 * * * *", request=candles(), misfire="all")
    scheduler = Scheduler(schedules)
    schedules.set_enabled("job", False)

    run_until(scheduler, clock, datetime(2024, 5, 1, 11, 0, 30, tzinfo=UTC))
    assert tasks.count() == 0
    assert schedules.get("job").to_dict()["next_instant"] is None

    schedules.set_enabled("job", True)
    run_until(scheduler, clock, datetime(2024, 5, 1, 11, 20, 30, tzinfo=UTC))
    assert instants(scheduled_tasks(tasks)) == ["2024-05-01T11:10:00Z", "2024-05-01T11:20:00Z"]


def test_remove_keeps_the_tasks_and_frees_the_name(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    schedules.add("job", cron="*/10 * * * *", request=candles())
    run_until(Scheduler(schedules), clock, datetime(2024, 5, 1, 10, 10, 30, tzinfo=UTC))

    removed = schedules.remove("job")

    assert tasks.count() == 2
    assert {t.schedule_id for t in scheduled_tasks(tasks)} == {removed.id}
    with pytest.raises(NotFoundError, match="no schedule named 'job'"):
        schedules.get("job")
    assert schedules.add("job", cron="@daily", request=candles()).id != removed.id


def test_run_now_takes_the_latest_due_instant_once(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    schedules.add(
        "daily",
        cron="15 0 * * *",
        tz="Europe/Berlin",
        request=candles(),
        window="previous-day",
        file_name="candles_{instant:%Y%m%d}{ext}",
    )
    scheduler = Scheduler(schedules)

    first = scheduler.run_now(schedules.get("daily"))
    again = scheduler.run_now(schedules.get("daily"))

    assert first.created and not again.created and again.task_id == first.task_id
    task = tasks.get(first.task_id)
    assert ns_to_iso(task.scheduled_for_ns or 0) == "2024-04-30T22:15:00Z"  # 00:15 CEST
    assert (task.request["start"], task.request["end"]) == (
        "2024-04-29T22:00:00Z",
        "2024-04-30T22:00:00Z",
    )
    assert task.request["file_name"] == "candles_20240501.csv"
    assert schedules.get("daily").last_task_id == task.id


def complete(tasks: TaskStore, task: Task) -> None:
    claimed = tasks.claim(task.id, "test-worker", 60)
    assert claimed is not None
    tasks.complete(task.id, "test-worker", {"path": "x"}, TaskProgress())


def test_since_last_success_starts_where_the_last_completed_run_ended(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    schedules.add("job", cron="0 */6 * * *", request=candles(), window="since-last-success")
    scheduler = Scheduler(schedules)

    run_until(scheduler, clock, datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC))
    first = scheduled_tasks(tasks)[0]
    complete(tasks, first)
    run_until(scheduler, clock, datetime(2024, 5, 1, 18, 0, 30, tzinfo=UTC))
    # 18:00 failed: the next run starts at the end of the last success (12:00) again.
    run_until(scheduler, clock, datetime(2024, 5, 2, 0, 0, 30, tzinfo=UTC))

    found = scheduled_tasks(tasks)
    assert [(t.request["start"], t.request["end"]) for t in found] == [
        (None, "2024-05-01T12:00:00Z"),
        ("2024-05-01T12:00:00Z", "2024-05-01T18:00:00Z"),
        ("2024-05-01T12:00:00Z", "2024-05-02T00:00:00Z"),
    ]


def test_previous_interval_windows_follow_the_schedule(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    schedules.add("job", cron="0 9,17 * * mon-fri", request=candles(), window="previous-interval")

    run_until(Scheduler(schedules), clock, datetime(2024, 5, 6, 9, 0, 30, tzinfo=UTC), 240)

    found = scheduled_tasks(tasks)
    assert [(t.request["start"], t.request["end"]) for t in found][-2:] == [
        ("2024-05-03T09:00:00Z", "2024-05-03T17:00:00Z"),
        ("2024-05-03T17:00:00Z", "2024-05-06T09:00:00Z"),
    ]


def test_schedule_owner_and_attempts_reach_the_task(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    schedules.add("job", cron="0 10 * * *", request=candles(), owner="alice")

    run_until(Scheduler(schedules, max_attempts=5), clock, datetime(2024, 5, 1, 10, 1, tzinfo=UTC))

    (task,) = scheduled_tasks(tasks)
    assert (task.owner, task.max_attempts) == ("alice", 5)
    assert ExportRequest.from_dict(task.request).symbols == ("BTC/USDT",)


def test_a_window_in_the_schedule_zone_is_not_utc(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock
) -> None:
    schedules.add(
        "sydney", cron="@daily", tz="Australia/Sydney", request=candles(), window="previous-day"
    )

    run_until(Scheduler(schedules), clock, datetime(2024, 5, 2, tzinfo=UTC), 240)

    (task,) = scheduled_tasks(tasks)
    midnight = datetime(2024, 5, 2, tzinfo=ZoneInfo("Australia/Sydney"))
    assert task.scheduled_for_ns == datetime_to_ns(midnight)
    assert task.request["start"] == ns_to_iso(datetime_to_ns(midnight - timedelta(days=1)))


def test_scheduler_hooks_of_serve_and_run_worker_tick_at_once_and_stop(
    tmp_path: Path, task_store_where: Path | str
) -> None:
    from marketexport.config import load_settings
    from marketexport.tasks.scheduler import scheduler_hooks
    from tests.tasks.conftest import store_setting

    values = {"data_dir": tmp_path / "data", **store_setting(task_store_where)}
    settings = load_settings(values, environ={})
    # Added 179 s before the current minute began: exactly three minute boundaries since
    # (185 s before now, as this test had it, spans four when the clock is at :00-:04).
    now = time.time()
    if now % 60 > 50:  # not so close to the next minute that it begins mid-test
        time.sleep(60.2 - now % 60)
        now = time.time()
    three_minutes_ago = now - now % 60 - 179
    past = TaskStore.open(settings, clock=lambda: three_minutes_ago)
    ScheduleStore(past).add("minutely", cron="* * * * *", request=candles())
    past.close()
    tasks = TaskStore.open(settings)

    ((start, stop),) = scheduler_hooks(settings, tasks)
    start()
    deadline = time.monotonic() + 10
    while tasks.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop()

    assert tasks.count() == 3  # the three minutes due within the grace period
    tasks.close()
