"""``tasks show`` of a task cancelled before it ran, and the bounds of a task's priority."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.config import load_settings
from marketexport.errors import RequestError
from marketexport.tasks.store import TaskStore


def _run(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("follow", [[], ["--follow"]], ids=["plain", "follow"])
def test_show_of_a_task_cancelled_while_pending_has_no_run_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], follow: list[str]
) -> None:
    task_id = _run(tmp_path, capsys, "tasks", "submit", "ohlcv", "--format", "csv")[1].strip()
    _run(tmp_path, capsys, "tasks", "cancel", task_id)

    code, out, err = _run(tmp_path, capsys, "tasks", "show", task_id, *follow)

    assert err == ""
    assert code == (1 if follow else 0)  # --follow: 0 only for a completed task
    assert "  state:    cancelled" in out
    finished = next(line for line in out.splitlines() if line.startswith("  finished: "))
    assert finished.endswith("Z")  # no "(N s)": the task never ran
    assert "started:" not in out


@pytest.mark.parametrize("priority", ["99999999999999999999999", "101", "-101"])
def test_priority_out_of_range_is_exit_2_and_nothing_is_queued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], priority: str
) -> None:
    code, out, err = _run(tmp_path, capsys, "tasks", "submit", "ohlcv", "--format", "csv",
                          "--priority", priority)  # fmt: skip

    assert code == 2 and out == ""
    assert err == (
        f"RequestError: invalid priority '{priority}' (expected a whole number from -100 to "
        "100; higher runs first)\n"
    )
    assert not (tmp_path / "tasks.sqlite3").exists()


def test_the_task_store_holds_every_caller_to_the_same_bounds(tmp_path: Path) -> None:
    store = TaskStore.open(load_settings({"data_dir": tmp_path}, environ={}))
    try:
        with pytest.raises(RequestError, match="invalid priority '101'"):
            store.submit({"dataset": "ohlcv", "format": "csv"}, priority=101)
        accepted = store.submit({"dataset": "ohlcv", "format": "csv"}, priority=-100)
    finally:
        store.close()

    assert accepted.priority == -100
