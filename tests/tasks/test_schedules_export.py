"""A daily "yesterday's 1-minute candles" schedule against real imported candles: the file
holds exactly the window (half-open) and its manifest names the schedule and the instant."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow.parquet as pq
import pytest

from marketexport.config import Settings, load_settings
from marketexport.datasets import get_dataset
from marketexport.export.verify import verify_export
from marketexport.ingest import Hints, ingest_paths
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.model import TaskState
from marketexport.tasks.runner import Runner
from marketexport.tasks.scheduler import Scheduler
from marketexport.tasks.schedules import ScheduleStore
from marketexport.tasks.store import TaskStore
from marketexport.timeparse import datetime_to_ns
from tests.conftest import REPO
from tests.helpers import table_of

BERLIN = ZoneInfo("Europe/Berlin")


def imported_settings(tmp_path: Path, real: Path) -> Settings:
    """Settings over a store holding freqtrade's real Binance ETH/BTC 1m candles (2018-01)."""
    settings = load_settings({"data_dir": tmp_path / "data"}, environ={})
    store = DuckDBStore(Path(settings.store_url))
    try:
        reports = ingest_paths(
            [real / "ohlcv" / "freqtrade" / "ETH_BTC-1m.json"], store, Hints(exchange="binance")
        )
    finally:
        store.close()
    assert [report.error for report in reports] == [None]
    con = duckdb.connect(settings.store_url, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM ohlcv").fetchall() == [(14_397,)]
    finally:
        con.close()
    return settings


def add_daily(schedules: ScheduleStore, misfire: str = "skip") -> None:
    schedules.add(
        "eth-daily",
        cron="15 0 * * *",
        tz="Europe/Berlin",
        request=build_request(
            dataset="ohlcv", format="parquet", exchanges=["binance"], symbols=["ETH/BTC"]
        ),
        window="previous-day",
        file_name="ethbtc_1m_{instant:%Y%m%d}{ext}",
        misfire=misfire,
    )


@pytest.mark.slow
def test_daily_schedule_exports_yesterday_as_a_half_open_window(tmp_path: Path, real: Path) -> None:
    settings = imported_settings(tmp_path, real)
    # Created on the 24th at noon, ticked a little after 00:15 on the 25th (Berlin).
    now = [datetime(2018, 1, 24, 12, tzinfo=BERLIN).timestamp()]
    tasks = TaskStore.open(settings, clock=lambda: now[0])
    schedules = ScheduleStore(tasks)
    add_daily(schedules)
    now[0] = datetime(2018, 1, 25, 0, 15, 20, tzinfo=BERLIN).timestamp()
    (run,) = Scheduler(schedules).tick()
    schedule_id = schedules.get("eth-daily").id
    tasks.close()

    worker_tasks = TaskStore.open(settings)
    Runner(settings, worker_tasks, concurrency=1).run(until_idle=True)
    task = worker_tasks.get(run.task_id)
    worker_tasks.close()

    assert task.state == TaskState.COMPLETED, task.error
    path = Path(task.result["path"])  # type: ignore[index]
    assert path.name == "ethbtc_1m_20180125.parquet"
    times = pq.read_table(path).column("time").to_pylist()
    # The Berlin day of the 24th is 2018-01-23 23:00 to 2018-01-24 23:00 UTC.
    assert times[0] == datetime(2018, 1, 23, 23, 0, tzinfo=UTC)
    assert times[-1] == datetime(2018, 1, 24, 22, 59, tzinfo=UTC)
    # Independently from the source file: every candle of the window, and candles exist
    # on both sides of it, so the bounds come from the window and not from the data.
    source = json.loads((real / "ohlcv" / "freqtrade" / "ETH_BTC-1m.json").read_text())
    start_ms, end_ms = 1516748400000, 1516834800000  # 2018-01-23T23:00Z, 2018-01-24T23:00Z
    inside = [row[0] for row in source if start_ms <= row[0] < end_ms]
    assert [int(t.timestamp() * 1000) for t in times] == inside
    assert {start_ms - 60_000, end_ms} <= {row[0] for row in source}
    manifest = json.loads(Path(task.result["manifest_path"]).read_text())  # type: ignore[index]
    assert manifest["extra"]["task"]["schedule_id"] == schedule_id
    assert schedule_id.startswith("eth-daily@")
    assert manifest["extra"]["task"]["scheduled_for"] == "2018-01-24T23:15:00.000Z"
    assert (manifest["request"]["start"], manifest["request"]["end"]) == (
        "2018-01-23T23:00:00Z",
        "2018-01-24T23:00:00Z",
    )
    assert manifest["rows"] == len(inside) == 1439  # the source misses one minute that day
    verify_export(path)


@pytest.mark.slow
def test_a_late_run_exports_the_window_of_its_instant(tmp_path: Path, real: Path) -> None:
    settings = imported_settings(tmp_path, real)
    now = [datetime(2018, 1, 24, 12, tzinfo=BERLIN).timestamp()]
    tasks = TaskStore.open(settings, clock=lambda: now[0])
    schedules = ScheduleStore(tasks)
    add_daily(schedules, misfire="latest")

    # Down from before 00:15 on the 25th until 09:00 on the 26th: one late run, for the 26th.
    now[0] = datetime(2018, 1, 26, 9, tzinfo=BERLIN).timestamp()
    (run,) = Scheduler(schedules).tick()
    tasks.close()

    assert run.late
    assert run.instant_ns == datetime_to_ns(datetime(2018, 1, 26, 0, 15, tzinfo=BERLIN))
    worker_tasks = TaskStore.open(settings)
    Runner(settings, worker_tasks, concurrency=1).run(until_idle=True)
    task = worker_tasks.get(run.task_id)
    worker_tasks.close()
    times = pq.read_table(task.result["path"]).column("time").to_pylist()  # type: ignore[index]
    assert (times[0], times[-1]) == (
        datetime(2018, 1, 24, 23, 0, tzinfo=UTC),
        datetime(2018, 1, 25, 22, 59, tzinfo=UTC),
    )


def test_synthetic_candles_around_the_bounds(tmp_path: Path) -> None:
    """The same path on a few synthetic candles on both sides of each bound, in Sydney."""
    settings = load_settings({"data_dir": tmp_path / "data"}, environ={})
    spec = get_dataset("ohlcv")
    sydney = ZoneInfo("Australia/Sydney")
    # The Sydney day of 2024-04-07 has 25 hours: 2024-04-06 13:00Z to 2024-04-07 14:00Z.
    minutes = [
        datetime(2024, 4, 6, 12, 59, tzinfo=UTC),
        datetime(2024, 4, 6, 13, 0, tzinfo=UTC),
        datetime(2024, 4, 7, 13, 59, tzinfo=UTC),
        datetime(2024, 4, 7, 14, 0, tzinfo=UTC),
    ]
    rows = [
        {"exchange": "binance", "symbol": "ETH/BTC", "timeframe": "1m", "price_type": "trade",
         "time": m.replace(tzinfo=None), "open": "0.05", "high": "0.05", "low": "0.05",
         "close": "0.05", "volume": "1.5"}
        for m in minutes
    ]  # fmt: skip
    store = DuckDBStore(Path(settings.store_url))
    store.insert([(spec, [table_of(spec, rows).to_batches()[0]])])
    store.close()
    now = [datetime(2024, 4, 7, 12, tzinfo=sydney).timestamp()]
    tasks = TaskStore.open(settings, clock=lambda: now[0])
    schedules = ScheduleStore(tasks)
    schedules.add(
        "sydney", cron="@daily", tz="Australia/Sydney", window="previous-day",
        request=build_request(dataset="ohlcv", format="csv", symbols=["ETH/BTC"]),
    )  # fmt: skip
    now[0] = datetime(2024, 4, 8, 0, 0, 5, tzinfo=sydney).timestamp()
    (run,) = Scheduler(schedules).tick()
    tasks.close()

    worker_tasks = TaskStore.open(settings)
    Runner(settings, worker_tasks, concurrency=1, poll_s=0.05).run(until_idle=True)
    task = worker_tasks.get(run.task_id)
    worker_tasks.close()

    assert task.state == TaskState.COMPLETED, task.error
    with open(task.result["path"], newline="") as handle:  # type: ignore[index]
        times = [row["time"] for row in csv.DictReader(handle)]
    assert times == ["2024-04-06T13:00:00.000Z", "2024-04-07T13:59:00.000Z"]
    manifest = json.loads(Path(task.result["manifest_path"]).read_text())  # type: ignore[index]
    assert manifest["extra"]["task"]["schedule_id"].startswith("sydney@")
    assert manifest["extra"]["task"]["scheduled_for"] == "2024-04-07T14:00:00.000Z"


@pytest.mark.slow
def test_run_worker_runs_the_scheduler(tmp_path: Path) -> None:
    """A schedule whose last two minutes are due is carried out by `run-worker`."""
    settings = load_settings({"data_dir": tmp_path / "data"}, environ={})
    DuckDBStore(Path(settings.store_url)).close()
    two_minutes_ago = time.time() - 125
    tasks = TaskStore.open(settings, clock=lambda: two_minutes_ago)
    ScheduleStore(tasks).add(
        "minutely",
        cron="* * * * *",
        request=build_request(dataset="ohlcv", format="csv"),
        window="last:1m",
        file_name="minute_{instant_utc:%H%M}{ext}",
    )
    tasks.close()

    env = {**os.environ, "MARKETEXPORT_DATA_DIR": str(settings.data_dir)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "marketexport", "run-worker"], cwd=REPO, env=env
    )
    try:
        deadline = time.monotonic() + 60
        completed: list[str] = []
        while len(completed) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            check = TaskStore.open(settings)
            completed = [t.id for t in check.list(state=TaskState.COMPLETED)]
            check.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

    check = TaskStore.open(settings)
    done = check.list(state=TaskState.COMPLETED)
    check.close()
    assert len(done) >= 2
    assert all(t.schedule_id and t.schedule_id.startswith("minutely@") for t in done)
    assert all(Path(t.result["path"]).name.startswith("minute_") for t in done)  # type: ignore[index]
    assert worker.returncode == 0
