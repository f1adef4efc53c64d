"""Split exports on two real Celery workers: the parts are the single export, row for row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import zstandard

from marketexport.cli import main
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.request import ExportRequest, build_request
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.messages import deliveries
from marketexport.tasks.model import Task, TaskState
from marketexport.tasks.split import parts_of
from tests.tasks.celery_helpers import (
    CeleryRun,
    build_days,
    delete_prefix,
    part_files,
    pipeline_starts,
    redis_client,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SYMBOLS = ("BTC/USDT", "ETH/USDT")
ROWS = 3.5 * 86_400 / 10 * len(SYMBOLS)  # 3.5 days of 10-second candles: 60,480 rows


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CeleryRun]:
    redis_client()
    store = tmp_path / "store.duckdb"
    build_days(store, 3.5, 10, SYMBOLS)
    deployment = CeleryRun(tmp_path / "data", store, tmp_path / "logs")
    for key, value in deployment.env().items():
        monkeypatch.setenv(key, value)
    yield deployment
    deployment.stop_all()
    delete_prefix(deployment.prefix)


def submit(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["tasks", "submit", "ohlcv", *args]) == 0
    return capsys.readouterr().out.strip()


def single_export(run: CeleryRun, tmp_path: Path, request: ExportRequest) -> Path:
    store = DuckDBStore(run.store, read_only=True)
    try:
        return run_export(request, store, output_dir=tmp_path / "single").path
    finally:
        store.close()


def zstd_text(path: Path) -> str:
    with path.open("rb") as handle:
        reader = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True)
        return reader.read().decode()


def part_paths(task: Task) -> list[Path]:
    assert task.result is not None
    return [Path(part["path"]) for part in task.result["parts"]]


def test_split_exports_on_two_workers_equal_the_single_export(
    run: CeleryRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run.start_worker()
    run.start_worker()
    by_day = submit(capsys, "--format", "jsonl", "--compression", "zstd", "--split-by", "day",
                    "--join")  # fmt: skip
    by_symbol = submit(capsys, "--format", "csv", "--split-by", "symbol")
    by_rows = submit(capsys, "--format", "parquet", "--compression", "zstd",
                     "--split-by", "rows:25000")  # fmt: skip
    tasks = run.tasks()

    wait_until(lambda: all(tasks.get(t).is_terminal for t in (by_day, by_symbol, by_rows)), 180)

    # By day: four parts (three whole days and a half), in order they are the single file.
    day = tasks.get(by_day)
    assert day.state == TaskState.COMPLETED, day.error
    single = single_export(run, tmp_path, build_request(dataset="ohlcv", format="jsonl",
                                                        compression="zstd"))  # fmt: skip
    single_text = zstd_text(single)
    pieces = [zstd_text(path) for path in part_paths(day)]
    assert len(pieces) == 4
    assert "".join(pieces) == single_text
    assert len(single_text.splitlines()) == ROWS
    joined = Path(day.result["path"])  # type: ignore[index]
    assert zstd_text(joined) == single_text
    manifest = Path(day.result["manifest_path"])  # type: ignore[index]
    document = json.loads(manifest.read_text())
    single_manifest = json.loads(single.with_name(single.name + ".manifest.json").read_text())
    assert document["joined"]["sha256"]["payload"] == single_manifest["sha256"]["payload"]
    assert [entry["rows"] for entry in document["parts"]] == [
        8_640 * 2,
        8_640 * 2,
        8_640 * 2,
        4_320 * 2,
    ]
    assert verify_export(manifest).ok and verify_export(joined).ok
    assert main(["verify", str(manifest)]) == 0
    assert "OK" in capsys.readouterr().out

    # Progress of the whole is the sum of its parts; each part ran once.
    parts = parts_of(tasks, by_day)
    assert day.progress.rows_done == day.progress.rows_total == ROWS
    assert sum(part.task.progress.rows_done for part in parts) == ROWS
    assert all(part.task.attempts == 1 for part in parts)
    assert all(pipeline_starts(tasks, part.task.id) == 1 for part in parts)

    # By symbol: one CSV per symbol; together the same rows as the single CSV.
    symbol = tasks.get(by_symbol)
    assert symbol.state == TaskState.COMPLETED, symbol.error
    single_csv = single_export(run, tmp_path, build_request(dataset="ohlcv", format="csv"))
    whole = pd.read_csv(single_csv, dtype=str, keep_default_na=False)
    union = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False)
                       for p in part_paths(symbol)])  # fmt: skip
    assert len(part_paths(symbol)) == 2
    key = ["time", "symbol"]
    assert (
        union.sort_values(key)
        .reset_index(drop=True)
        .equals(whole.sort_values(key).reset_index(drop=True))
    )
    assert main(["verify", symbol.result["manifest_path"]]) == 0  # type: ignore[index]

    # By rows: parts of about 25,000 rows whose concatenation is the single Parquet table.
    rows = tasks.get(by_rows)
    assert rows.state == TaskState.COMPLETED, rows.error
    single_parquet = single_export(run, tmp_path, build_request(dataset="ohlcv",
                                   format="parquet", compression="zstd"))  # fmt: skip
    tables = [pq.read_table(path) for path in part_paths(rows)]
    assert [table.num_rows for table in tables] == [25_000, 25_000, 10_480]
    joined_table = pd.concat([table.to_pandas() for table in tables], ignore_index=True)
    assert joined_table.equals(pq.read_table(single_parquet).to_pandas())
    assert verify_export(Path(rows.result["manifest_path"])).ok  # type: ignore[index]

    # The parts ran on both workers, and nothing temporary is left.
    workers = {
        row["worker_id"]
        for parent in (by_day, by_symbol, by_rows)
        for part in parts_of(tasks, parent)
        for row in deliveries(tasks, part.task.id)
        if row["claimed"]
    }
    assert len(workers) == 2
    assert part_files(run.data_dir / "exports") == []
    tasks.close()


def test_cancel_of_a_split_export_cancels_its_parts_and_removes_their_files(
    run: CeleryRun, capsys: pytest.CaptureFixture[str]
) -> None:
    run.start_worker()
    parent = submit(capsys, "--format", "csv", "--split-by", "rows:10000")
    tasks = run.tasks()
    wait_until(lambda: any(p.task.state == TaskState.COMPLETED for p in parts_of(tasks, parent)),
               60)  # fmt: skip

    assert main(["tasks", "cancel", parent]) == 0
    wait_until(lambda: tasks.get(parent).is_terminal, 60)

    assert tasks.get(parent).state == TaskState.CANCELLED
    parts = parts_of(tasks, parent)
    assert len(parts) == 7
    assert all(part.task.is_terminal for part in parts)
    assert any(part.task.state == TaskState.CANCELLED for part in parts)
    leftovers = [p for p in (run.data_dir / "exports").rglob("*") if p.is_file()]
    assert leftovers == []
    tasks.close()
