"""The real service over HTTP: flow, ranges, cancel, auth, isolation, input refusal."""

from __future__ import annotations

import hashlib

import pytest

from marketexport.api.auth import UserStore
from marketexport.config import load_settings
from marketexport.tasks.store import task_store_path
from tests.api.conftest import Service, wait_for

pytestmark = pytest.mark.slow

EXPORT = {"dataset": "ohlcv", "format": "csv", "compression": "gzip", "symbols": ["BTC/USDT"]}


@pytest.fixture(scope="module")
def done_task(service: Service) -> dict:
    with service.client("alice") as client:
        created = client.post("/v1/tasks", json=EXPORT)
        assert created.status_code == 201, created.text
        return wait_for(client, created.json()["id"], {"completed", "failed"})


def test_full_flow_download_matches_manifest(service: Service, done_task: dict) -> None:
    with service.client("alice") as client:
        manifest = client.get(f"/v1/tasks/{done_task['id']}/manifest").json()
        response = client.get(f"/v1/tasks/{done_task['id']}/download")

    assert done_task["state"] == "completed"
    assert done_task["progress"]["rows_done"] == done_task["progress"]["rows_total"] == 1440
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert hashlib.sha256(response.content).hexdigest() == manifest["sha256"]["file"]
    assert response.headers["x-checksum-sha256"] == manifest["sha256"]["file"]


def test_range_download_resumes(service: Service, done_task: dict) -> None:
    url = f"/v1/tasks/{done_task['id']}/download"
    with service.client("alice") as client:
        whole = client.get(url).content
        half = len(whole) // 2
        first = client.get(url, headers={"Range": f"bytes=0-{half - 1}"})
        rest = client.get(url, headers={"Range": f"bytes={half}-"})

    assert first.status_code == rest.status_code == 206
    assert first.content + rest.content == whole


def test_requests_without_valid_token_get_401(service: Service) -> None:
    settings = load_settings({"data_dir": service.data_dir}, environ={})
    users = UserStore(task_store_path(settings))
    info, token = users.create_token("alice")
    users.revoke_token(info.id)
    users.close()

    with service.client(None) as anonymous:
        assert anonymous.get("/v1/tasks").status_code == 401
        assert anonymous.post("/v1/tasks", json=EXPORT).status_code == 401
        revoked = anonymous.get("/v1/tasks", headers={"Authorization": f"Bearer {token}"})
        forged = anonymous.get("/v1/tasks", headers={"Authorization": "Bearer me_x_y"})

    assert revoked.status_code == forged.status_code == 401


def test_other_users_task_is_not_found(service: Service, done_task: dict) -> None:
    task_id = done_task["id"]
    with service.client("bob") as bob, service.client("root") as admin:
        answers = [
            bob.get(f"/v1/tasks/{task_id}"),
            bob.get(f"/v1/tasks/{task_id}/download"),
            bob.get(f"/v1/tasks/{task_id}/manifest"),
            bob.post(f"/v1/tasks/{task_id}/cancel"),
        ]
        listed = bob.get("/v1/tasks").json()
        seen_by_admin = admin.get(f"/v1/tasks/{task_id}")

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert all(task_id not in a.text or "no task" in a.text for a in answers)
    assert task_id not in [t["id"] for t in listed]
    assert seen_by_admin.status_code == 200


@pytest.mark.parametrize(
    "field,value",
    [
        ("dataset", "../../etc/passwd"),
        ("format", "../csv"),
        ("compression", "/etc/passwd"),
        ("symbols", ["../../secret"]),
        ("exchanges", ["../binance"]),
        ("columns", ["../time"]),
        ("where", ["../x = 1"]),
        ("start", "../../2024-01-01"),
        ("end", "/etc/passwd"),
        ("encryption", {"scheme": "aes256", "key": "../../keys/other"}),
        ("destination", "../../etc"),
        ("destination", "/tmp/elsewhere"),
        ("destination", "sftp://user@127.0.0.1/../../etc?x=1"),
    ],
)
def test_path_traversal_in_every_field_is_refused(
    service: Service, field: str, value: object
) -> None:
    with service.client("alice") as client:
        response = client.post("/v1/tasks", json={**EXPORT, field: value})

    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["type"] in ("RequestError", "ConfigError")
    assert "Traceback" not in response.text and "/src/" not in response.text


def test_bad_request_message_matches_the_cli(service: Service) -> None:
    with service.client("alice") as client:
        response = client.post("/v1/tasks", json={**EXPORT, "format": "parqet"})

    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "unknown format 'parqet' (expected one of: csv, json, jsonl, parquet, xlsx, xml)"
    )


def test_cancel_pending_then_conflict(service: Service) -> None:
    with service.client("alice") as client:
        created = client.post("/v1/tasks", json={**EXPORT, "priority": -100}).json()
        cancelled = client.post(f"/v1/tasks/{created['id']}/cancel")
        final = wait_for(client, created["id"], {"cancelled", "completed"})
        again = client.post(f"/v1/tasks/{created['id']}/cancel")

    assert cancelled.status_code == 200
    if final["state"] == "cancelled":
        assert again.status_code == 409
        assert client_download_missing(service, created["id"])


def client_download_missing(service: Service, task_id: str) -> bool:
    with service.client("alice") as client:
        return client.get(f"/v1/tasks/{task_id}/download").status_code == 404


def test_openapi_schema_is_served(service: Service) -> None:
    with service.client(None) as client:
        schema = client.get("/openapi.json").json()

    assert "/v1/tasks" in schema["paths"]
    assert "/v1/tasks/{task_id}/download" in schema["paths"]


def test_schedules_crud_and_isolation(service: Service) -> None:
    body = {
        "name": "daily-candles",
        "cron": "15 0 * * *",
        "tz": "Europe/Berlin",
        "misfire": "latest",
        "window": "previous-day",
        "export": {"dataset": "ohlcv", "format": "parquet", "compression": "zstd"},
    }
    with service.client("alice") as alice, service.client("bob") as bob:
        created = alice.post("/v1/schedules", json=body)
        listed = alice.get("/v1/schedules").json()
        one = alice.get("/v1/schedules/daily-candles", params={"count": 3}).json()
        paused = alice.post("/v1/schedules/daily-candles/pause").json()
        resumed = alice.post("/v1/schedules/daily-candles/resume").json()
        foreign = [
            bob.get("/v1/schedules/daily-candles"),
            bob.post("/v1/schedules/daily-candles/pause"),
            bob.delete("/v1/schedules/daily-candles"),
        ]
        bobs_list = bob.get("/v1/schedules").json()
        bad = alice.post("/v1/schedules", json={**body, "name": "x", "cron": "61 * * * *"})
        bad_zone = alice.post("/v1/schedules", json={**body, "name": "y", "tz": "Mars/Base"})
        deleted = alice.delete("/v1/schedules/daily-candles")
        gone = alice.get("/v1/schedules/daily-candles")

    assert created.status_code == 201, created.text
    assert [s["name"] for s in listed] == ["daily-candles"]
    assert len(one["next_runs"]) == 3
    assert all(run.endswith("+00:00") for run in one["next_runs"])
    assert paused["enabled"] is False and resumed["enabled"] is True
    assert [r.status_code for r in foreign] == [404, 404, 404]
    assert bobs_list == []
    assert bad.status_code == 422 and "61" in bad.json()["error"]["message"]
    assert bad_zone.status_code == 422 and "Mars/Base" in bad_zone.json()["error"]["message"]
    assert deleted.status_code == 200
    assert gone.status_code == 404
