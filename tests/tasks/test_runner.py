"""The local runner in-process: concurrency limit, progress, cancel, retry, stop."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from marketexport.config import Settings
from marketexport.export.pipeline import ExportResult, run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.tasks.attempt import retry_delay_s
from marketexport.tasks.model import TaskState
from marketexport.tasks.runner import Runner
from marketexport.tasks.store import TaskStore
from tests.tasks.conftest import MINUTE_NS, T0_NS, files_under
from tests.tasks.helpers import Watcher, WrappedStore, wait_for

CSV = build_request(dataset="ohlcv", format="csv")
# The first 5,000 of the store's 20,000 one-minute candles.
END = str((T0_NS + 5000 * MINUTE_NS) // 1_000_000)
FORMATS = [("csv", "none"), ("jsonl", "zstd"), ("json", "gzip"), ("parquet", "zstd")]


def runner_for(settings: Settings, tasks: TaskStore, **kwargs: Any) -> Runner:
    options: dict[str, Any] = {"poll_s": 0.02, "retry_delay_s": 0.05, "progress_write_s": 0.01}
    options.update(kwargs)
    return Runner(settings, tasks, **options)


def start(runner: Runner, **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(target=runner.run, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_twelve_exports_never_run_more_than_ten_at_once(
    task_settings: Settings, tasks: TaskStore
) -> None:
    ids = [
        tasks.submit(build_request(dataset="ohlcv", format=fmt, compression=codec, end=END)).id
        for i in range(12)
        for fmt, codec in [FORMATS[i % len(FORMATS)]]
    ]
    lock = threading.Lock()
    active = [0, 0]  # running now, most at once
    ten_running = threading.Event()

    stores: list[object] = []

    def instrumented(*args: Any, **kwargs: Any) -> ExportResult:
        with lock:
            stores.append(args[1].inner)  # the shared store behind the budget's gate
            active[0] += 1
            active[1] = max(active[1], active[0])
            if active[0] >= 10:
                ten_running.set()
        try:
            # The first ten wait for each other, so the test shows the limit is reached.
            ten_running.wait(20)
            return run_export(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    running_in_store: list[int] = []
    observer = TaskStore(tasks.location)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            running_in_store.append(observer.count(TaskState.RUNNING))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    runner = runner_for(task_settings, tasks, concurrency=10, export=instrumented)

    runner.run(until_idle=True)
    done.set()
    sampler.join()
    observer.close()

    assert active[1] == 10
    assert max(running_in_store) == 10
    assert len({id(store) for store in stores[:10]}) == 1
    for task_id in ids:
        task = tasks.get(task_id)
        assert task.state == TaskState.COMPLETED and task.attempts == 1
        assert task.result is not None and task.result["rows"] == 5000
        assert verify_export(Path(task.result["path"])).ok
        assert Path(task.result["path"]).parent == task.output_dir(task_settings.export_path)


def test_progress_rises_monotonically_to_rows_total(
    task_settings: Settings, tasks: TaskStore
) -> None:
    task = tasks.submit(CSV)
    path = Path(task_settings.store_url)
    runner = runner_for(
        task_settings, tasks, open_data_store=lambda: WrappedStore(path, pause_s=0.01)
    )

    with Watcher(tasks.location, task.id) as watcher:
        runner.run(until_idle=True)

    done = [seen.progress.rows_done for seen in watcher.seen if seen.state == TaskState.RUNNING]
    final = watcher.seen[-1]
    assert done == sorted(done)
    assert len({rows for rows in done if 0 < rows < 20_000}) >= 5
    assert final.state == TaskState.COMPLETED
    assert final.progress.rows_done == final.progress.rows_total == 20_000
    assert final.progress.bytes_written == final.result["file_bytes"]  # type: ignore[index]


def test_cancel_stops_a_running_export_within_one_batch(
    task_settings: Settings, tasks: TaskStore
) -> None:
    task = tasks.submit(CSV)
    observer = TaskStore(tasks.location)
    fetched_after_cancel: list[bool] = []

    def note(batch: pa.RecordBatch) -> None:
        fetched_after_cancel.append(observer.get(task.id).cancel_requested)

    path = Path(task_settings.store_url)
    # One encode thread: with more, a task reads a batch ahead per extra thread (dropped
    # on cancel, never written), which this count would see.
    one_thread = replace(task_settings, cpu_fraction=1 / (os.cpu_count() or 1))
    runner = runner_for(
        one_thread,
        tasks,
        open_data_store=lambda: WrappedStore(path, pause_s=0.01, on_batch=note),
    )
    thread = start(runner, until_idle=True)
    wait_for(lambda: observer.get(task.id).progress.rows_done >= 3000)

    tasks.request_cancel(task.id)
    thread.join(30)
    observer.close()

    ended = tasks.get(task.id)
    assert ended.state == TaskState.CANCELLED
    assert sum(fetched_after_cancel) <= 1
    assert ended.progress.rows_done < 20_000
    assert files_under(task_settings.export_path) == []


def test_cancel_while_no_runner_is_alive_is_honoured_at_start(
    task_settings: Settings, tasks: TaskStore
) -> None:
    task = tasks.submit(CSV)
    tasks.claim_next("a-runner-that-dies", lease_s=0.05)
    leftover = task.output_dir(task_settings.export_path) / ".ohlcv.csv.0a1b2c3d.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")
    tasks.request_cancel(task.id)
    calls: list[object] = []

    def export(*args: Any, **kwargs: Any) -> ExportResult:
        calls.append(args)
        return run_export(*args, **kwargs)

    wait_for(lambda: tasks.clock() > tasks.get(task.id).lease_expires_at)  # type: ignore[operator]
    runner_for(task_settings, tasks, export=export).run(until_idle=True)

    assert tasks.get(task.id).state == TaskState.CANCELLED
    assert calls == []
    assert files_under(task_settings.export_path) == []


def test_transient_store_failure_is_retried_and_completes(
    task_settings: Settings, tasks: TaskStore, caplog: pytest.LogCaptureFixture
) -> None:
    task = tasks.submit(CSV)
    failures = [1]
    path = Path(task_settings.store_url)
    runner = runner_for(
        task_settings, tasks, open_data_store=lambda: WrappedStore(path, fail_stats=failures)
    )

    with caplog.at_level(logging.INFO, logger="marketexport.tasks"):
        runner.run(until_idle=True)

    done = tasks.get(task.id)
    assert (done.state, done.attempts, failures) == (TaskState.COMPLETED, 2, [0])
    assert verify_export(Path(done.result["path"])).ok  # type: ignore[index]
    words = [r.getMessage().split()[2] for r in caplog.records if task.id in r.getMessage()]
    assert [word for word in words if word not in ("queued", "progress")] == [
        "started",
        "retrying",
        "started",
        "succeeded",
    ]


def test_bad_request_fails_at_once_without_retry(task_settings: Settings, tasks: TaskStore) -> None:
    task = tasks.submit({"dataset": "candles", "format": "csv"})

    runner_for(task_settings, tasks).run(until_idle=True)

    failed = tasks.get(task.id)
    assert (failed.state, failed.attempts) == (TaskState.FAILED, 1)
    assert failed.error is not None and not failed.error.retryable
    assert failed.error.kind == "RequestError" and "'candles'" in failed.error.message
    assert files_under(task_settings.export_path) == []


def test_retryable_failure_gives_up_after_max_attempts(
    task_settings: Settings, tasks: TaskStore
) -> None:
    task = tasks.submit(CSV, max_attempts=3)
    failures = [10]
    path = Path(task_settings.store_url)
    runner = runner_for(
        task_settings, tasks, open_data_store=lambda: WrappedStore(path, fail_stats=failures)
    )

    runner.run(until_idle=True)

    failed = tasks.get(task.id)
    assert (failed.state, failed.attempts, failures) == (TaskState.FAILED, 3, [7])
    assert failed.error is not None and failed.error.kind == "TransientStoreError"
    assert [retry_delay_s(5, n) for n in (1, 2, 3, 9)] == [5, 10, 20, 300]


def test_stop_now_requeues_a_running_task_and_a_new_runner_finishes_it(
    task_settings: Settings, tasks: TaskStore
) -> None:
    task = tasks.submit(CSV)
    path = Path(task_settings.store_url)
    slow = runner_for(
        task_settings, tasks, open_data_store=lambda: WrappedStore(path, pause_s=0.01)
    )
    thread = start(slow)
    wait_for(lambda: tasks.get(task.id).progress.rows_done >= 2000)

    slow.stop(now=True)
    thread.join(30)
    requeued = tasks.get(task.id)
    left_behind = files_under(task_settings.export_path)
    runner_for(task_settings, tasks).run(until_idle=True)

    assert (requeued.state, requeued.attempts) == (TaskState.PENDING, 0)
    assert left_behind == []
    done = tasks.get(task.id)
    assert (done.state, done.attempts) == (TaskState.COMPLETED, 1)


def test_graceful_stop_lets_a_running_task_finish(
    task_settings: Settings, tasks: TaskStore
) -> None:
    task = tasks.submit(CSV)
    path = Path(task_settings.store_url)
    runner = runner_for(
        task_settings, tasks, open_data_store=lambda: WrappedStore(path, pause_s=0.01)
    )
    thread = start(runner, grace_s=30)
    wait_for(lambda: tasks.get(task.id).progress.rows_done >= 2000)

    runner.stop()
    thread.join(30)

    assert tasks.get(task.id).state == TaskState.COMPLETED


def test_rerun_replaces_what_an_interrupted_attempt_left(
    task_settings: Settings, tasks: TaskStore
) -> None:
    task = tasks.submit(CSV)
    directory = task.output_dir(task_settings.export_path)
    directory.mkdir(parents=True)
    (directory / ".old-name.csv.deadbeef.part").write_bytes(b"partial")
    (directory / "old-name.csv").write_bytes(b"a finished file whose success was never recorded")

    runner_for(task_settings, tasks).run(until_idle=True)

    done = tasks.get(task.id)
    names = sorted(path.name for path in files_under(directory))
    file_name = Path(done.result["path"]).name  # type: ignore[index]
    assert names == sorted([file_name, file_name + ".manifest.json", "SHA256SUMS"])
    assert verify_export(directory / file_name).ok
