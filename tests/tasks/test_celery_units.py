"""The Celery executor's parts that need no broker: claims and copies in a worker process,
re-sending lost messages, split plans and split exports run in-process, the parts manifest,
log lines and the CLI's checks. Messages go to a list instead of Redis."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketexport.cli import main
from marketexport.config import Settings
from marketexport.errors import RequestError
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks import executor
from marketexport.tasks.celery_worker import ProcessWorker, configure_worker, process_worker
from marketexport.tasks.messages import deliveries, ensure_schema, last_message
from marketexport.tasks.model import TaskError, TaskState
from marketexport.tasks.split import parts_of, settle, split_request
from marketexport.tasks.split_plan import SplitSpec, check_split, parse_split, plan_parts
from marketexport.tasks.store import TaskStore
from marketexport.tasks.tasklog import TaskIdFilter, task_context
from tests.tasks.celery_helpers import DAY_NS, T0_NS, build_days
from tests.tasks.conftest import files_under, make_settings, store_setting
from tests.tasks.helpers import WrappedStore


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Messages 'sent' to Celery: (task id, countdown)."""
    messages: list[tuple[str, float]] = []

    def publish(settings: Settings, task_id: str, message_id: str, countdown_s: float) -> bool:
        messages.append((task_id, countdown_s))
        return True

    monkeypatch.setattr(executor, "_publish", publish)
    return messages


@pytest.fixture
def celery_settings(tmp_path: Path, task_store_where: Path | str) -> Settings:
    """Three days of 60-second candles for two symbols (8,640 rows), in batches of 500."""
    settings = make_settings(
        tmp_path, executor="celery", batch_rows=500, task_lease_s=1, task_retry_delay_s=1,
        **store_setting(task_store_where),
    )  # fmt: skip
    build_days(Path(settings.store_url), 3, 60, ("BTC/USDT", "ETH/USDT"))
    return settings


@pytest.fixture
def worker(celery_settings: Settings) -> Iterator[ProcessWorker]:
    configure_worker(celery_settings, 1)
    made = process_worker()
    yield made
    made.tasks.close()
    configure_worker(celery_settings, 1)


def run_message(worker: ProcessWorker, task_id: str, redelivered: bool = False) -> bool:
    """What the Celery task body does with one message; True when it ran the task."""
    claimed = worker.claim(task_id, f"{task_id}.00000000", redelivered)
    if claimed is None:
        return False
    worker.run(*claimed)
    return True


CSV = build_request(dataset="ohlcv", format="csv")


def test_dispatch_sends_one_message_only_with_the_celery_executor(
    celery_settings: Settings, sent: list[tuple[str, float]]
) -> None:
    tasks = TaskStore.open(celery_settings)
    local = make_settings(celery_settings.data_dir.parent, executor="local")

    quiet = executor.dispatch(local, tasks, tasks.submit(CSV))
    loud = executor.dispatch(celery_settings, tasks, tasks.submit(CSV))

    assert sent == [(loud.id, 0.0)]
    assert last_message(tasks, quiet.id) is None
    assert last_message(tasks, loud.id) is not None
    tasks.close()


@pytest.mark.slow
def test_a_copy_of_a_running_task_exits_and_a_copy_of_a_dead_one_takes_over(
    worker: ProcessWorker, sent: list[tuple[str, float]]
) -> None:
    tasks = worker.tasks
    task = tasks.submit(CSV)
    assert tasks.claim(task.id, "a-worker-that-dies", lease_s=1.0) is not None
    leftover = task.output_dir(worker.context.export_root) / ".ohlcv.csv.0a1b2c3d.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")

    held = run_message(worker, task.id, redelivered=True)
    time.sleep(1.1)  # the dead worker's lease runs out
    took_over = run_message(worker, task.id, redelivered=True)

    done = tasks.get(task.id)
    assert (held, took_over) == (False, True)
    assert done.state == TaskState.COMPLETED and done.attempts == 2
    assert [row["claimed"] for row in deliveries(tasks, task.id)] == [0, 1]
    assert [row["pipeline_started_at"] is not None for row in deliveries(tasks, task.id)] == [
        False,
        True,
    ]
    names = sorted(path.name for path in files_under(done.output_dir(worker.context.export_root)))
    assert names == sorted(done.result["files"])  # type: ignore[index]
    assert verify_export(Path(done.result["path"])).ok  # type: ignore[index]


@pytest.mark.slow
def test_a_message_for_a_task_cancelled_while_its_worker_was_dead_removes_its_files(
    worker: ProcessWorker, sent: list[tuple[str, float]]
) -> None:
    tasks = worker.tasks
    task = tasks.submit(CSV)
    tasks.claim(task.id, "a-worker-that-dies", lease_s=1.0)
    leftover = task.output_dir(worker.context.export_root) / ".ohlcv.csv.0a1b2c3d.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")
    tasks.request_cancel(task.id)
    time.sleep(1.1)

    ran = run_message(worker, task.id, redelivered=True)

    assert not ran
    assert tasks.get(task.id).state == TaskState.CANCELLED
    assert files_under(worker.context.export_root) == []


@pytest.mark.slow
def test_a_retryable_failure_sends_a_message_due_when_the_delay_ends(
    worker: ProcessWorker, sent: list[tuple[str, float]]
) -> None:
    opened: list[WrappedStore] = []
    failures = [1]  # the first stats() call fails with a transient error

    def acquire() -> WrappedStore:
        opened.append(WrappedStore(Path(worker.settings.store_url), fail_stats=failures))
        return opened[-1]

    worker.context.acquire_store = acquire
    worker.context.release_store = lambda: opened.pop().close()
    task = worker.tasks.submit(CSV)

    run_message(worker, task.id)

    waiting = worker.tasks.get(task.id)
    assert waiting.state == TaskState.PENDING and waiting.error is not None
    assert len(sent) == 1 and sent[0][0] == task.id and 0.5 < sent[0][1] <= 1.0
    time.sleep(1.05)
    assert run_message(worker, task.id)
    assert worker.tasks.get(task.id).state == TaskState.COMPLETED


def test_the_sweep_sends_messages_only_for_tasks_that_have_none_alive(
    celery_settings: Settings, sent: list[tuple[str, float]]
) -> None:
    now = [1_000.0]
    tasks = TaskStore.open(celery_settings, clock=lambda: now[0])
    ensure_schema(tasks)
    never = tasks.submit(CSV)  # queued while Redis was down
    fresh = executor.dispatch(celery_settings, tasks, tasks.submit(CSV))
    orphan = executor.dispatch(celery_settings, tasks, tasks.submit(CSV))
    now[0] += 1
    tasks.claim(orphan.id, "dead", lease_s=5)
    now[0] += 10
    tasks.recover_expired()  # its worker died: pending again, its message was used up
    sent.clear()
    empty = [False]

    first = executor.send_missing(celery_settings, tasks, lambda: empty[0])
    second = executor.send_missing(celery_settings, tasks, lambda: empty[0])
    now[0] += celery_settings.celery_redispatch_s
    busy_queue = executor.send_missing(celery_settings, tasks, lambda: empty[0])
    empty[0] = True
    lost = executor.send_missing(celery_settings, tasks, lambda: empty[0])

    assert sorted(first) == sorted([never.id, orphan.id])
    assert second == [] and busy_queue == []
    assert sorted(lost) == sorted([never.id, fresh.id, orphan.id])
    assert [task_id for task_id, _ in sent] == [*first, *lost]
    tasks.close()


def test_split_plans_cover_the_request_without_overlap(celery_settings: Settings) -> None:
    store = DuckDBStore(Path(celery_settings.store_url), read_only=True)
    start = T0_NS + DAY_NS // 2
    request = build_request(dataset="ohlcv", format="csv", start=f"{start}ns")
    try:
        by_day = plan_parts(request, parse_split("day"), store, 1000)
        by_symbol = plan_parts(request, parse_split("symbol"), store, 1000)
        by_rows = plan_parts(request, parse_split("rows:1000"), store, 300)
        total = store.stats(request.spec, request.filters()).rows
    finally:
        store.close()

    assert [plan.rows for plan in by_day] == [720 * 2, 1440 * 2, 1440 * 2]
    assert by_day[0].request.start_ns == start and by_day[-1].request.end_ns is None
    assert [plan.request.symbols for plan in by_symbol] == [("BTC/USDT",), ("ETH/USDT",)]
    assert [plan.rows for plan in by_rows] == [1000] * 7 + [200]
    for plans in (by_day, by_symbol, by_rows):
        assert sum(plan.rows for plan in plans) == total
    for earlier, later in zip(by_rows, by_rows[1:], strict=False):
        assert earlier.request.end_ns == later.request.start_ns


def test_split_forms_and_join_rules_are_checked() -> None:
    with pytest.raises(RequestError, match="expected day, symbol or rows:N"):
        parse_split("week")
    with pytest.raises(RequestError, match="rows:N"):
        parse_split("rows:0")
    jsonl = build_request(dataset="ohlcv", format="jsonl", compression="zstd")
    check_split(jsonl, parse_split("day", concat=True))
    with pytest.raises(RequestError, match="format jsonl .not csv.; compression"):
        check_split(build_request(dataset="ohlcv", format="csv", compression="snappy"),
                    parse_split("rows:10", concat=True))  # fmt: skip
    with pytest.raises(RequestError, match="symbol parts are not in time order"):
        check_split(jsonl, parse_split("symbol", concat=True))


def run_split(worker: ProcessWorker, split: SplitSpec, request: Any = None) -> str:
    """Submit a split export and run its messages in this process until none is left."""
    parent = worker.tasks.submit(split_request(request or CSV, split))
    run_message(worker, parent.id)
    for part in parts_of(worker.tasks, parent.id):
        run_message(worker, part.task.id)
    return parent.id


@pytest.mark.slow
def test_a_split_export_in_process_writes_a_parts_manifest_that_verify_checks(
    worker: ProcessWorker, sent: list[tuple[str, float]], tmp_path: Path
) -> None:
    request = build_request(dataset="ohlcv", format="jsonl", compression="gzip")
    parent_id = run_split(worker, parse_split("day", concat=True), request)

    parent = worker.tasks.get(parent_id)
    assert parent.state == TaskState.COMPLETED
    assert [task_id for task_id, _ in sent] == [
        p.task.id for p in parts_of(worker.tasks, parent_id)
    ]
    manifest = Path(parent.result["manifest_path"])  # type: ignore[index]
    report = verify_export(manifest)
    assert report.ok, report.problems
    assert sum("part " in line for line in report.checked) >= 3
    assert main(["verify", str(manifest)]) == 0

    # A part changed after the fact is caught, and named.
    first_part = Path(parent.result["parts"][0]["path"])  # type: ignore[index]
    data = bytearray(first_part.read_bytes())
    data[-9] ^= 0xFF
    first_part.write_bytes(bytes(data))
    broken = verify_export(manifest)
    assert not broken.ok
    assert any(problem.startswith("part 1:") for problem in broken.problems)
    assert not any("joined" in problem for problem in broken.problems)

    # So is a changed joined file, down to the piece.
    joined = Path(parent.result["path"])  # type: ignore[index]
    pieces = json.loads(manifest.read_text())["parts"]
    data = bytearray(joined.read_bytes())
    data[pieces[0]["bytes"]["file"] + 20] ^= 0xFF
    joined.write_bytes(bytes(data))
    problems = verify_export(joined).problems
    assert any(problem.startswith("joined piece 2 sha256") for problem in problems), problems
    assert any(problem.startswith("joined file sha256") for problem in problems)


@pytest.mark.slow
def test_a_part_that_fails_once_is_retried_alone(
    worker: ProcessWorker, sent: list[tuple[str, float]]
) -> None:
    parent = worker.tasks.submit(split_request(CSV, parse_split("day")))
    run_message(worker, parent.id)  # planned with the real store
    opened: list[WrappedStore] = []
    failures = [1]  # then the first part's first stats() call fails with a transient error

    def acquire() -> WrappedStore:
        opened.append(WrappedStore(Path(worker.settings.store_url), fail_stats=failures))
        return opened[-1]

    worker.context.acquire_store = acquire
    worker.context.release_store = lambda: opened.pop().close()
    parts = parts_of(worker.tasks, parent.id)
    for part in parts:
        run_message(worker, part.task.id)
    waiting = worker.tasks.get(parts[0].task.id)
    time.sleep(1.05)
    run_message(worker, parts[0].task.id)

    done = worker.tasks.get(parent.id)
    assert waiting.state == TaskState.PENDING and waiting.error is not None
    assert [worker.tasks.get(p.task.id).attempts for p in parts] == [2, 1, 1]
    assert done.state == TaskState.COMPLETED
    assert done.progress.rows_done == done.progress.rows_total == 8640
    assert verify_export(Path(done.result["manifest_path"])).ok  # type: ignore[index]


@pytest.mark.slow
def test_a_part_that_fails_for_good_fails_the_whole_and_a_retry_reruns_only_it(
    worker: ProcessWorker, sent: list[tuple[str, float]]
) -> None:
    split = parse_split("symbol")
    parent = worker.tasks.submit(split_request(CSV, split))
    run_message(worker, parent.id)
    first, second = parts_of(worker.tasks, parent.id)
    run_message(worker, first.task.id)
    bad = worker.tasks.claim(second.task.id, "elsewhere", lease_s=60)
    assert bad is not None
    worker.tasks.fail(second.task.id, "elsewhere", TaskError("disk on fire", "SinkError", False))
    settle(worker.tasks, worker.settings, parent.id, worker.worker_id)

    failed = worker.tasks.get(parent.id)
    assert failed.state == TaskState.FAILED
    assert failed.error is not None and "part 2 of 2" in failed.error.message
    assert "disk on fire" in failed.error.message

    worker.tasks.retry(parent.id)
    run_message(worker, parent.id)
    assert worker.tasks.get(first.task.id).attempts == 1  # kept: completed, file in place
    run_message(worker, second.task.id)
    done = worker.tasks.get(parent.id)
    assert done.state == TaskState.COMPLETED
    assert done.result is not None
    # Without a joined file, the whole export's name stands for its parts.
    assert not Path(done.result["path"]).exists()
    assert verify_export(Path(done.result["path"])).ok
    assert verify_export(Path(done.result["manifest_path"])).ok


def test_worker_log_lines_carry_the_task_id() -> None:
    record = logging.LogRecord("marketexport.x", logging.INFO, "f", 1, "plain", None, None)
    celery_line = logging.LogRecord(
        "celery.app.trace", logging.INFO, "f", 1,
        "Task marketexport.run_task[%s] succeeded", ("ab" * 16 + ".0011aabb",), None,
    )  # fmt: skip
    given = logging.LogRecord("marketexport.y", logging.INFO, "f", 1, "x", None, None)
    given.task_id = "c" * 32
    check = TaskIdFilter()

    check.filter(record)
    with task_context("d" * 32):
        inside = logging.LogRecord("marketexport.z", logging.INFO, "f", 1, "y", None, None)
        check.filter(inside)
    check.filter(celery_line)
    check.filter(given)

    assert record.task_id == "-"  # type: ignore[attr-defined]
    assert inside.task_id == "d" * 32  # type: ignore[attr-defined]
    assert celery_line.task_id == "ab" * 16  # type: ignore[attr-defined]
    assert given.task_id == "c" * 32  # type: ignore[attr-defined]


def test_cli_refuses_split_without_celery_and_join_without_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETEXPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKETEXPORT_EXECUTOR", "local")
    base = ["tasks", "submit", "ohlcv", "--format", "csv"]

    assert main([*base, "--split-by", "day"]) == 2
    assert main([*base, "--join"]) == 2
    monkeypatch.setenv("MARKETEXPORT_EXECUTOR", "celery")
    assert main([*base, "--split-by", "week"]) == 2
    assert main([*base, "--split-by", "day", "--join"]) == 2
    errors = capsys.readouterr().err.splitlines()

    assert errors[0].startswith("ConfigError: --split-by runs parts on Celery workers")
    assert errors[1] == "ConfigError: --join needs --split-by"
    assert errors[2].startswith("RequestError: invalid split 'week'")
    assert errors[3].startswith("RequestError: parts can be joined into one file only with")


@pytest.mark.slow
def test_celery_commands_need_the_celery_executor_and_a_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETEXPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKETEXPORT_EXECUTOR", "local")
    assert main(["celery-status"]) == 2
    monkeypatch.setenv("MARKETEXPORT_EXECUTOR", "celery")
    monkeypatch.setenv("MARKETEXPORT_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    assert main(["celery-status", "--timeout", "0.5"]) == 1
    errors = capsys.readouterr().err.splitlines()

    assert errors[0].startswith("ConfigError: the executor is 'local'")
    assert errors[1].startswith("BrokerError: the Redis broker at redis://:***@127.0.0.1:1/0")
    assert "hunter2" not in "".join(errors)
