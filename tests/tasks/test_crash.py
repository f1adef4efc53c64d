"""``marketexport run-worker`` as a real process: SIGKILL mid-export, SIGTERM re-queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.tasks.model import TaskState
from marketexport.tasks.store import TaskStore
from tests.tasks.conftest import build_candles, files_under
from tests.tasks.helpers import wait_for

ROWS = 800_000
WORKER = [sys.executable, "-c", "from marketexport.cli import run; run()", "run-worker"]


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 800,000 candles: a CSV export of it takes a few seconds."""
    path = tmp_path_factory.mktemp("big") / "store.duckdb"
    build_candles(path, ROWS)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def workers(data_dir: Path, big_store: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_worker(
    started: list[subprocess.Popen[bytes]], data_dir: Path, store: Path, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETEXPORT_")}
    env.update(
        MARKETEXPORT_DATA_DIR=str(data_dir),
        MARKETEXPORT_STORE=str(store),
        MARKETEXPORT_TASK_LEASE_S="1",
        MARKETEXPORT_BATCH_ROWS="20000",
    )
    with log.open("wb") as handle:
        process = subprocess.Popen([*WORKER, *args], env=env, stdout=handle, stderr=handle)
    started.append(process)
    return process


def temp_files(root: Path) -> list[Path]:
    return [path for path in files_under(root) if path.name.endswith(".part")]


@pytest.mark.slow
def test_sigkill_mid_export_then_a_new_runner_completes_it_exactly_once(
    tmp_path: Path, data_dir: Path, big_store: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    tasks = TaskStore(data_dir / "tasks.sqlite3")
    task = tasks.submit(build_request(dataset="ohlcv", format="csv"))
    exports = data_dir / "exports"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_worker(workers, data_dir, big_store, first_log)
    wait_for(lambda: tasks.get(task.id).progress.rows_done >= 100_000, timeout_s=60)

    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = tasks.get(task.id)
    half_written = temp_files(exports)
    second = start_worker(workers, data_dir, big_store, second_log, "--until-idle")
    assert second.wait(timeout=120) == 0

    assert at_kill.state == TaskState.RUNNING and at_kill.progress.rows_done < ROWS
    assert len(half_written) == 1
    done = tasks.get(task.id)
    assert (done.state, done.attempts) == (TaskState.COMPLETED, 2)
    assert done.result is not None and done.result["rows"] == ROWS
    output = Path(done.result["path"])
    names = sorted(path.name for path in files_under(exports))
    assert names == sorted([output.name, output.name + ".manifest.json", "SHA256SUMS"])
    assert temp_files(exports) == []
    assert verify_export(output).ok
    manifest = json.loads(Path(done.result["manifest_path"]).read_text())
    assert manifest["extra"]["task"] == {"id": task.id, "owner": "local", "attempt": 2}
    succeeded = f"task {task.id} succeeded"
    assert first_log.read_text().count(succeeded) == 0
    assert second_log.read_text().count(succeeded) == 1
    assert f"task {task.id} retrying" in second_log.read_text()


@pytest.mark.slow
def test_sigterm_requeues_the_running_task_and_leaves_no_file(
    tmp_path: Path, data_dir: Path, big_store: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    tasks = TaskStore(data_dir / "tasks.sqlite3")
    task = tasks.submit(build_request(dataset="ohlcv", format="csv"))
    log = tmp_path / "worker.log"
    worker = start_worker(workers, data_dir, big_store, log, "--grace-s", "0")
    wait_for(lambda: tasks.get(task.id).progress.rows_done >= 40_000, timeout_s=60)

    worker.send_signal(signal.SIGTERM)
    code = worker.wait(timeout=60)

    assert code == 0
    requeued = tasks.get(task.id)
    assert (requeued.state, requeued.attempts) == (TaskState.PENDING, 0)
    assert files_under(data_dir / "exports") == []
    assert f"task {task.id} queued again" in log.read_text()
