"""POST /v1/tasks and /v1/schedules judge the export as `marketexport export` does: 422 with
the CLI's one line, nothing stored, and a huge offending value echoed cut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketexport.api.app import create_app
from marketexport.api.auth import UserStore
from marketexport.config import load_settings
from marketexport.tasks.store import task_store_path

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
