"""``marketexport tasks ...`` and ``run-worker`` driven through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.config import Settings
from marketexport.export.verify import verify_export


def cli(settings: Settings, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    stores = ["--store", settings.store_url]
    if settings.task_store:
        stores += ["--task-store", settings.task_store]
    code = main(["--data-dir", str(settings.data_dir), *stores, *args])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.slow
def test_submit_run_show_and_stats(
    task_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(task_settings, capsys, "tasks", "submit", "ohlcv", "--format", "jsonl",
                    "--compression", "zstd", "--end", "2023-11-15", "--priority", "2")  # fmt: skip
    task_id = out.strip()
    assert code == 0 and len(task_id) == 32

    assert cli(task_settings, capsys, "run-worker", "--until-idle", "--concurrency", "2")[0] == 0
    code, out = cli(task_settings, capsys, "tasks", "show", task_id[:8], "--json")
    shown = json.loads(out)
    code_follow, text = cli(task_settings, capsys, "tasks", "show", task_id, "--follow")
    code_stats, stats_out = cli(task_settings, capsys, "tasks", "stats", "--json")
    listed = json.loads(cli(task_settings, capsys, "tasks", "list", "--json")[1])

    assert code == 0 and shown["state"] == "completed" and shown["priority"] == 2
    assert shown["progress"]["rows_done"] == shown["result"]["rows"] > 0
    assert verify_export(Path(shown["result"]["path"])).ok
    assert code_follow == 0 and "state:    completed" in text and shown["result"]["path"] in text
    stats = json.loads(stats_out)
    assert code_stats == 0 and stats["by_state"]["completed"] == 1
    assert stats["rows_exported"] == shown["result"]["rows"]
    assert [task["id"] for task in listed] == [task_id]


def test_cancel_and_retry_from_the_command_line(
    task_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = cli(task_settings, capsys, "tasks", "submit", "ohlcv", "--format", "csv", "--json")
    task_id = json.loads(out)["id"]

    code_cancel, cancelled = cli(task_settings, capsys, "tasks", "cancel", task_id)
    code_list, listed = cli(task_settings, capsys, "tasks", "list", "--state", "cancelled")
    code_again, again = cli(task_settings, capsys, "tasks", "cancel", task_id)
    code_retry, retried = cli(task_settings, capsys, "tasks", "retry", task_id, "--json")
    code_follow, _ = cli(task_settings, capsys, "tasks", "show", task_id)

    assert (code_cancel, cancelled.strip()) == (0, f"{task_id} cancelled")
    assert code_list == 0 and task_id in listed and "cancelled" in listed
    assert code_again == 2
    expected = f"TaskStateError: task {task_id} is already cancelled; nothing to cancel"
    assert again.strip() == expected
    assert code_retry == 0 and json.loads(retried)["state"] == "pending"
    assert code_follow == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "submit", "candles", "--format", "csv"], "RequestError: unknown dataset"),
        (["tasks", "show", "0123456789abcdef"], "NotFoundError: no task with id"),
        (["tasks", "list", "--state", "done"], "RequestError: unknown task state 'done'"),
        (["tasks", "stats", "--window", "soon"], "RequestError: invalid window 'soon'"),
        (
            ["tasks", "submit", "ohlcv", "--format", "csv", "--owner", "../x"],
            "RequestError: invalid owner '../x'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    task_settings: Settings, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out = cli(task_settings, capsys, *args)

    assert code == 2
    assert out.startswith(message) and out.count("\n") == 1
    assert "Traceback" not in out
