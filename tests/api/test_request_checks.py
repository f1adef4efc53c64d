"""POST /v1/tasks and /v1/schedules judge the export as `marketexport export` does: 422 with
the CLI's one line, nothing stored, and a huge offending value echoed cut. A schedule name
taken is 409; a task's error never lists the server's key names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketexport.api.app import create_app
from marketexport.api.auth import UserStore
from marketexport.config import load_settings
from marketexport.demo import load_demo
from marketexport.export.encryption.keys import KeyDirectory
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.runner import Runner
from marketexport.tasks.store import TaskStore, task_store_path

from .test_key_names import Client

SCHEDULE = {"name": "daily", "cron": "0 0 * * *", "window": "previous-day"}


@pytest.fixture
def client(tmp_path: Path) -> Client:
    settings = load_settings({"data_dir": tmp_path / "data"}, environ={})
    users = UserStore(task_store_path(settings))
    users.add_user("alice", "user")
    token = users.create_token("alice")[1]
    users.close()
    return Client(create_app(settings), token)


@pytest.mark.parametrize(
    ("export", "message"),
    [
        (
            {"dataset": "ohlcv", "format": "csv", "columns": ["open", "open"]},
            "column 'open' is given twice in columns (each column may appear once)",
        ),
        (
            {"dataset": "ohlcv", "format": "xlsx", "compression": "gzip"},
            "compression 'gzip' does not apply to xlsx: the workbook is a zip archive "
            "compressed inside (expected: none)",
        ),
        ({"dataset": "ohlcv", "format": "csv", "start": ""}, "invalid start '' (expected"),
        ({"dataset": "ohlcv", "format": "csv", "columns": []}, "no column in columns []"),
    ],
    ids=["column-twice", "xlsx-gzip", "empty-start", "no-columns"],
)
def test_task_and_schedule_refuse_what_export_refuses(
    client: Client, export: dict[str, Any], message: str
) -> None:
    task = client.post("/v1/tasks", json=export)
    schedule = client.post("/v1/schedules", json={**SCHEDULE, "export": export})

    for response in (task, schedule):
        assert response.status_code == 422
        assert response.json()["error"]["type"] == "RequestError"
        assert response.json()["error"]["message"].startswith(message)
    assert client.get("/v1/tasks").json() == []
    assert client.get("/v1/schedules").json() == []


def test_xlsx_with_zstd_schedule_is_refused(client: Client) -> None:
    export = {"dataset": "ohlcv", "format": "xlsx", "compression": "zstd"}

    response = client.post("/v1/schedules", json={**SCHEDULE, "export": export})

    assert response.status_code == 422 and "'zstd' does not apply to xlsx" in response.text


def test_a_megabyte_symbol_gives_a_short_422(client: Client) -> None:
    export = {"dataset": "ohlcv", "format": "csv", "symbols": ["B" * 1_000_000]}

    response = client.post("/v1/tasks", json=export)

    assert response.status_code == 422
    assert len(response.content) < 400
    assert "\u2026 (1000000 characters) (expected BASE/QUOTE" in response.json()["error"]["message"]


def test_a_schedule_name_taken_is_409(client: Client) -> None:
    body = {**SCHEDULE, "export": {"dataset": "ohlcv", "format": "csv"}}

    first = client.post("/v1/schedules", json=body)
    again = client.post("/v1/schedules", json=body)

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["error"] == {
        "type": "ConflictError",
        "message": "a schedule named 'daily' already exists for owner 'alice' (remove it "
        "first, or choose another name)",
    }


def test_a_task_failing_for_a_missing_key_names_no_other_key(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path / "data"}, environ={})
    store = DuckDBStore(Path(settings.store_url))
    load_demo(store, minutes=10)
    store.close()
    keys = KeyDirectory(settings.key_path)
    for name in ("vault", "auditor"):
        keys.generate("aes256", name)
    users = UserStore(task_store_path(settings))
    users.add_user("alice", "user")
    client = Client(create_app(settings), users.create_token("alice")[1])
    users.close()
    body = {"dataset": "ohlcv", "format": "csv", "encryption": {"scheme": "aes256", "key": "vault"}}
    task_id = client.post("/v1/tasks", json=body).json()["id"]
    keys.private_path("vault", "aes256").unlink()  # the key goes away before the task runs

    tasks = TaskStore.open(settings)
    try:
        Runner(settings, tasks, concurrency=1).run(until_idle=True)
    finally:
        tasks.close()

    task = client.get(f"/v1/tasks/{task_id}").json()
    assert task["state"] == "failed"
    assert task["error"]["message"] == (
        "no key named 'vault' in the key directory ('marketexport keys list' shows its keys; "
        "create one with 'marketexport keys generate KIND NAME')"
    )
