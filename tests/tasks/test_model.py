"""Task records: names, validation, JSON form, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from marketexport.errors import RequestError, SinkError, TaskStateError, TransientStoreError
from marketexport.tasks.model import (
    Task,
    TaskError,
    TaskProgress,
    TaskState,
    check_owner,
    check_state,
    iso_time,
    new_task_id,
)


def test_owner_must_be_a_plain_name() -> None:
    assert check_owner("alice.b-2") == "alice.b-2"
    for bad in ("", "../x", ".hidden", "a/b", "x" * 65, "名前"):
        with pytest.raises(RequestError, match="invalid owner"):
            check_owner(bad)


def test_unknown_state_names_the_valid_ones() -> None:
    assert check_state("running") is TaskState.RUNNING
    with pytest.raises(RequestError, match="'done'.*pending, running, completed, failed"):
        check_state("done")


def test_error_records_keep_whether_a_retry_may_help() -> None:
    busy = TaskError.from_exception(TransientStoreError("store busy; will retry"))
    full = TaskError.from_exception(SinkError("disk full", retryable=True))
    bad = TaskError.from_exception(RequestError("unknown dataset 'x'"))

    assert (busy.kind, busy.retryable) == ("TransientStoreError", True)
    assert full.retryable is True
    assert (bad.kind, bad.retryable, bad.message) == ("RequestError", False, "unknown dataset 'x'")
    assert TaskError.from_dict(bad.to_dict()) == bad


def test_task_json_form_and_output_dir(tmp_path: Path) -> None:
    task = Task(
        id=new_task_id(),
        owner="bob",
        request={"dataset": "trades", "format": "csv", "compression": "zstd"},
        state=TaskState.RUNNING,
        progress=TaskProgress(50, 200, 1234, 10.0, 15.0),
        created_at=1_700_000_000.0,
        started_at=1_700_000_001.5,
        updated_at=1_700_000_004.0,
    )

    data = task.to_dict()

    assert data["state"] == "running" and data["progress"]["percent"] == 25.0
    assert data["created_at"] == "2023-11-14T22:13:20.000Z"
    assert data["duration_s"] == 2.5
    assert task.label == "trades -> csv+zstd"
    assert task.output_dir(tmp_path) == tmp_path / "bob" / task.id
    assert len(task.id) == 32 and task.id != new_task_id()


def test_progress_percent_of_an_empty_export_is_complete() -> None:
    assert TaskProgress(0, 0).percent == 100.0
    assert TaskProgress(5, None).percent is None
    assert iso_time(None) is None


def test_task_state_error_pickles_and_is_bad_input() -> None:
    error = TaskStateError("task x is completed", task_id="x", state="completed")

    again = pickle.loads(pickle.dumps(error))

    assert (again.task_id, again.state, again.exit_code) == ("x", "completed", 2)
