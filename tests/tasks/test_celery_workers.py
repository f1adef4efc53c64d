"""Real `marketexport celery-worker` processes over a real Redis: each export runs to one
output, whatever the redeliveries, deaths and cancels."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.tasks.messages import deliveries, last_message
from marketexport.tasks.model import TaskState
from tests.tasks.celery_helpers import (
    APART_REDIS_URL,
    DAY_NS,
    REDIS_URL,
    T0_NS,
    CeleryRun,
    build_days,
    delete_prefix,
    part_files,
    pipeline_starts,
    redis_client,
    wait_until,
    worker_pid_of,
)
from tests.tasks.conftest import files_under

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SYMBOLS = ("BTC/USDT", "ETH/USDT")
# 20 days of 10-second candles for two symbols: a CSV export of a few seconds on one core.
BIG_DAYS = 20
BIG_ROWS = BIG_DAYS * 8640 * 2
FORMATS = [("csv", "none"), ("jsonl", "zstd"), ("json", "gzip"), ("parquet", "zstd")]


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("celery-store") / "store.duckdb"
    build_days(path, BIG_DAYS, 10, SYMBOLS)
    return path


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path, big_store: Path) -> Iterator[CeleryRun]:
    """Workers on one machine; or, as parametrized, on "machines apart": data directories
    of their own, sharing Redis, a PostgreSQL task store and the export directory."""
    apart = getattr(request, "param", "one-machine") == "machines-apart"
    url = APART_REDIS_URL if apart else REDIS_URL
    redis_client(url)
    deployment = CeleryRun(
        tmp_path / "data",
        big_store,
        tmp_path / "logs",
        task_store=request.getfixturevalue("pg_task_store") if apart else None,
        apart=apart,
        redis_url=url,
    )
    yield deployment
    deployment.stop_all()
    delete_prefix(deployment.prefix, url)


# The tests that also run with the workers on machines apart.
ON_MACHINES_APART = pytest.mark.parametrize(
    "run",
    ["one-machine", pytest.param("machines-apart", marks=pytest.mark.postgres)],
    indirect=True,
)


def small_request(index: int) -> object:
    fmt, codec = FORMATS[index % len(FORMATS)]
    start = T0_NS + (index % 5) * DAY_NS
    return build_request(
        dataset="ohlcv", format=fmt, compression=codec,
        start=f"{start}ns", end=f"{start + DAY_NS // 2}ns",
    )  # fmt: skip


def big_request() -> object:
    return build_request(dataset="ohlcv", format="csv")


def exports_of(run: CeleryRun) -> Path:
    return run.data_dir / "exports"


@ON_MACHINES_APART
def test_twenty_exports_on_two_workers_each_complete_once_and_verify(run: CeleryRun) -> None:
    run.start_worker()
    run.start_worker()
    ids = [run.submit(small_request(i)).id for i in range(18)]
    tasks = run.tasks()
    # A task whose message never went out (queued while Redis was down), and one whose
    # send failed: the workers' sweeps send their messages.
    ids.append(tasks.submit(small_request(18)).id)
    down = run.settings(redis_url="redis://127.0.0.1:1/0")
    from marketexport.tasks.executor import dispatch

    ids.append(dispatch(down, tasks, tasks.submit(small_request(19))).id)
    assert last_message(tasks, ids[-1]) is None

    wait_until(lambda: tasks.count(TaskState.COMPLETED) == 20, 120)

    worker_ids = set()
    for task_id in ids:
        task = tasks.get(task_id)
        assert task.state == TaskState.COMPLETED and task.attempts == 1
        assert pipeline_starts(tasks, task_id) == 1
        worker_ids.update(row["worker_id"] for row in deliveries(tasks, task_id) if row["claimed"])
        assert task.result is not None and verify_export(Path(task.result["path"])).ok
        assert task.result["rows"] == 4320 * len(SYMBOLS)  # half a day of 10 s candles
        names = sorted(path.name for path in files_under(task.output_dir(exports_of(run))))
        assert names == sorted(task.result["files"])
    assert len(worker_ids) >= 2  # both workers ran exports
    assert part_files(exports_of(run)) == []
    # Apart, the machines kept no task store and no export of their own.
    for machine in run.machine_dirs():
        assert sorted(path.name for path in machine.iterdir()) == ["store.duckdb"]
    tasks.close()

    # Every log line that names one of these tasks carries that id in its task field.
    for line in run.log_text().splitlines():
        named = {task_id for task_id in ids if task_id in line}
        if named:
            field = re.search(r" task=(\S+) ", line)
            assert field is not None and field[1] in named, line


@ON_MACHINES_APART
def test_a_worker_killed_mid_export_is_finished_by_the_other_with_one_output(
    run: CeleryRun,
) -> None:
    # Batches of 1,000 rows keep the export running for seconds even on an idle machine:
    # at 20,000 it once finished before the kill arrived.
    run.env_extra["MARKETEXPORT_BATCH_ROWS"] = "1000"
    run.start_worker()
    run.start_worker()
    task = run.submit(big_request())
    tasks = run.tasks()
    wait_until(lambda: tasks.get(task.id).progress.rows_done >= 60_000, 60)
    first_owner = tasks.get(task.id).lease_owner
    assert first_owner is not None
    doomed = next(w for w in run.workers if w.pid == worker_pid_of(first_owner))

    run.kill(doomed)
    wait_until(lambda: tasks.get(task.id).is_terminal, 120)

    done = tasks.get(task.id)
    assert done.state == TaskState.COMPLETED
    assert done.attempts == 2 and pipeline_starts(tasks, task.id) == 2
    assert done.lease_owner != first_owner
    assert done.result is not None and done.result["rows"] == BIG_ROWS
    assert verify_export(Path(done.result["path"])).ok
    names = sorted(path.name for path in files_under(done.output_dir(exports_of(run))))
    assert names == sorted(done.result["files"])  # one export, its manifest, SHA256SUMS
    assert part_files(exports_of(run)) == []
    tasks.close()


def test_a_visibility_timeout_shorter_than_the_export_still_runs_it_once(
    run: CeleryRun,
) -> None:
    run.env_extra["MARKETEXPORT_CELERY_VISIBILITY_TIMEOUT_S"] = "1"
    # Small batches keep the export running well past the 1 s timeout even on an idle
    # machine, so that Redis hands the message out again while it runs.
    run.env_extra["MARKETEXPORT_BATCH_ROWS"] = "500"
    run.start_worker()
    run.start_worker()
    task = run.submit(big_request())
    tasks = run.tasks()

    wait_until(lambda: tasks.get(task.id).is_terminal, 120)

    done = tasks.get(task.id)
    received = deliveries(tasks, task.id)
    assert done.state == TaskState.COMPLETED and done.attempts == 1
    assert pipeline_starts(tasks, task.id) == 1
    # Redis handed the message out again while the export ran; that copy did no work.
    copies = [row for row in received if not row["claimed"]]
    assert copies and all(row["redelivered"] for row in copies)
    assert "is not above celery_task_time_limit_s" in run.log_text()
    assert done.result is not None and verify_export(Path(done.result["path"])).ok
    names = sorted(path.name for path in files_under(done.output_dir(exports_of(run))))
    assert names == sorted(done.result["files"])
    tasks.close()


def test_cancel_of_a_running_export_ends_it_at_the_next_batch(
    run: CeleryRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches keep the export running for a while even on an idle machine, so the
    # cancel below (after a status call of about a second) reaches it mid-run: at 500 rows
    # a batch the whole export once finished before the cancel arrived.
    run.env_extra["MARKETEXPORT_BATCH_ROWS"] = "100"
    for key, value in run.env().items():
        monkeypatch.setenv(key, value)
    run.start_worker()
    run.start_worker()
    task = run.submit(big_request())
    tasks = run.tasks()
    wait_until(lambda: tasks.get(task.id).progress.rows_done >= 2_000, 60)
    capsys.readouterr()
    status_code = main(["celery-status", "--timeout", "1"])
    status = capsys.readouterr().out

    before = time.time()
    assert main(["tasks", "cancel", task.id]) == 0
    committed = time.time()
    wait_until(lambda: tasks.get(task.id).is_terminal, 30)

    done = tasks.get(task.id)
    # Under load a lease can lapse and the other worker take over: judge the attempt that
    # actually saw the cancel.
    run_row = next(row for row in deliveries(tasks, task.id) if row["outcome"] == "cancelled")
    assert done.state == TaskState.CANCELLED
    # No batch began after the cancel was committed without seeing it.
    assert run_row["last_clear_check_at"] < committed
    assert run_row["cancel_seen_at"] >= before
    assert run_row["cancel_checks"] > 3
    assert done.progress.rows_done < BIG_ROWS
    assert files_under(done.output_dir(exports_of(run))) == []
    assert status_code == 0
    assert "workers: 2" in status and task.id in status and "running" in status


def test_a_cancel_sent_while_every_worker_is_down_is_honoured_when_they_start(
    run: CeleryRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    run.env_extra["MARKETEXPORT_BATCH_ROWS"] = "1000"  # still running when the workers die
    for key, value in run.env().items():
        monkeypatch.setenv(key, value)
    run.start_worker()
    running = run.submit(big_request())
    tasks = run.tasks()
    wait_until(lambda: tasks.get(running.id).progress.rows_done >= 40_000, 60)
    for worker in run.workers:
        run.kill(worker)
    queued = run.submit(small_request(0))

    assert main(["tasks", "cancel", running.id]) == 0
    assert main(["tasks", "cancel", queued.id]) == 0
    assert tasks.get(running.id).state == TaskState.RUNNING  # its worker is gone
    run.start_worker()
    run.start_worker()
    wait_until(lambda: tasks.get(running.id).is_terminal, 30)
    # The queued task's message reaches a worker, which finds it cancelled.
    wait_until(lambda: len(deliveries(tasks, queued.id)) >= 1, 30)

    assert tasks.get(running.id).state == TaskState.CANCELLED
    assert tasks.get(queued.id).state == TaskState.CANCELLED
    assert pipeline_starts(tasks, running.id) == 1  # only the run that was killed
    assert pipeline_starts(tasks, queued.id) == 0
    assert files_under(exports_of(run)) == []  # the killed run's temporary file is gone
    tasks.close()
