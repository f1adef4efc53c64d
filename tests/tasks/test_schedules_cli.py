"""``marketexport schedule ...`` through the real entry point: output, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.tasks.store import TaskStore

EXPORT = ["--", "ohlcv", "--format", "parquet", "--exchange", "binance", "--symbol", "ETH/BTC"]


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def schedule_rows(data_dir: Path) -> int:
    tasks = TaskStore(data_dir / "tasks.sqlite3")
    try:
        return int(tasks.read("SELECT count(*) FROM schedules")[0][0])
    finally:
        tasks.close()


def test_add_list_next_pause_resume_remove(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    add = ["schedule", "add", "daily", "--cron", "15 0 * * *", "--tz", "Europe/Berlin"]
    add += ["--window", "previous-day", "--misfire", "latest", "--grace", "10m", "--json"]

    code, out, _ = run(capsys, data, *add, *EXPORT)
    added = json.loads(out)
    assert code == 0
    assert (added["name"], added["window"], added["misfire"], added["grace_s"]) == (
        "daily",
        "previous-day",
        "latest",
        600.0,
    )
    assert added["request"]["symbols"] == ["ETH/BTC"]

    code, out, _ = run(capsys, data, "schedule", "list", "--json")
    assert code == 0 and [s["name"] for s in json.loads(out)] == ["daily"]
    code, out, _ = run(capsys, data, "schedule", "list")
    assert "daily" in out and "previous-day" in out and "next:" in out

    after = ["--after", "2024-10-26T12:00:00Z", "--count", "2", "--json"]
    code, out, _ = run(capsys, data, "schedule", "next", "daily", *after)
    preview = json.loads(out)
    assert [p["instant"] for p in preview] == ["2024-10-26T22:15:00Z", "2024-10-27T23:15:00Z"]
    assert [p["local"] for p in preview] == [
        "2024-10-27T00:15:00+02:00",
        "2024-10-28T00:15:00+01:00",
    ]
    # The run on the 28th exports the 25-hour 27th.
    assert preview[1]["window"] == {"start": "2024-10-26T22:00:00Z", "end": "2024-10-27T23:00:00Z"}

    code, out, _ = run(capsys, data, "schedule", "pause", "daily", "--json")
    assert code == 0 and json.loads(out)["enabled"] is False
    code, out, _ = run(capsys, data, "schedule", "resume", "daily")
    assert code == 0 and "resumed" in out
    code, out, _ = run(capsys, data, "schedule", "remove", "daily", "--yes")
    assert code == 0 and "removed" in out
    assert schedule_rows(data) == 0


def test_next_without_a_stored_schedule(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["schedule", "next", "--cron", "30 2 * * *", "--tz", "America/New_York"]

    code, out, _ = run(capsys, tmp_path, *args, "--after", "2024-03-09", "--count", "2")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("2024-03-09T02:30:00-05:00") and "2024-03-09T07:30:00Z" in lines[0]
    # 02:30 does not exist on the 10th: the run is at 03:00 EDT, right after the gap.
    assert lines[1].startswith("2024-03-10T03:00:00-04:00") and "2024-03-10T07:00:00Z" in lines[1]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--cron", "61 * * * *"], "RequestError: invalid cron expression '61 * * * *'"),
        (["--cron", "@daily", "--tz", "Mars/Base"], "RequestError: unknown time zone 'Mars/Base'"),
        (
            ["--cron", "@daily", "--window", "between:-1m,-2m"],
            "RequestError: empty or inverted window 'between:-1m,-2m'",
        ),
        (["--cron", "@daily", "--window", "tomorrow"], "RequestError: invalid window 'tomorrow'"),
        (["--cron", "@daily", "--grace", "soon"], "RequestError: invalid grace period 'soon'"),
        (["--cron", "@daily", "--misfire", "never"], "Invalid value for '--misfire'"),
    ],
)
def test_invalid_input_exits_2_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, options: list[str], named: str
) -> None:
    code, _, err = run(capsys, tmp_path, "schedule", "add", "job", *options, *EXPORT)

    assert code == 2
    assert named in err
    assert "Traceback" not in err
    assert not (tmp_path / "tasks.sqlite3").exists() or schedule_rows(tmp_path) == 0


def test_export_arguments_must_follow_a_double_dash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, tmp_path, "schedule", "add", "job", "--cron", "@daily")

    assert code == 2
    assert "give the export arguments after --" in err


def test_bad_export_arguments_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["schedule", "add", "job", "--cron", "@daily", "--", "ohlcv", "--format", "pdf"]

    code, _, err = run(capsys, tmp_path, *args)

    assert code == 2
    assert "unknown format 'pdf'" in err


def test_run_queues_one_task_for_the_latest_instant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, tmp_path, "schedule", "add", "hourly", "--cron", "@hourly", *EXPORT)

    first = json.loads(run(capsys, tmp_path, "schedule", "run", "hourly", "--json")[1])
    code, out, _ = run(capsys, tmp_path, "schedule", "run", "hourly")

    assert first["created"] is True and first["instant"].endswith(":00:00Z")
    assert code == 0 and f"already has task {first['task_id']}" in out
    tasks = TaskStore(tmp_path / "tasks.sqlite3")
    try:
        assert [t.id for t in tasks.list()] == [first["task_id"]]
    finally:
        tasks.close()


def test_unknown_schedule_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for command in ("pause", "resume", "run", "next"):
        code, _, err = run(capsys, tmp_path, "schedule", command, "ghost")

        assert code == 2
        assert "NotFoundError: no schedule named 'ghost'" in err
