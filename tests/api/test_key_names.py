"""POST /v1/tasks and /v1/schedules refuse an encryption key name the server's key directory
lacks: 422 naming it and the kind needed (never the server's other key names, nor a key),
nothing queued."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketexport.api.app import create_app
from marketexport.api.auth import UserStore
from marketexport.config import load_settings
from marketexport.export.encryption.keys import KeyDirectory
from marketexport.tasks.store import task_store_path

EXPORT = {"dataset": "ohlcv", "format": "csv"}


class Client:
    """Requests to the app in this process (no server, no lifespan hooks)."""

    def __init__(self, app: Any, token: str) -> None:
        self._app = app
        self._headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.request(method, path, json=body, headers=self._headers)

        return asyncio.run(send())

    def post(self, path: str, json: Any) -> httpx.Response:
        return self.request("POST", path, json)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)


@pytest.fixture
def client(tmp_path: Path) -> Client:
    settings = load_settings({"data_dir": tmp_path / "data"}, environ={})
    KeyDirectory(settings.key_path).generate("aes256", "vault")
    users = UserStore(task_store_path(settings))
    users.add_user("alice", "user")
    token = users.create_token("alice")[1]
    users.close()
    return Client(create_app(settings), token)


def test_task_with_an_unknown_encryption_key_is_422_and_not_queued(client: Client) -> None:
    body = {**EXPORT, "encryption": {"scheme": "aes256", "key": "nosuch"}}

    response = client.post("/v1/tasks", json=body)

    assert response.status_code == 422
    assert response.json()["error"] == {
        "type": "RequestError",
        "message": "unknown encryption key 'nosuch': the key directory has no such key "
        "(expected the name of a key of kind aes256)",
    }
    assert "vault" not in response.text  # the server's key names are not the user's
    assert client.get("/v1/tasks").json() == []


def test_task_with_a_key_of_another_kind_is_422(client: Client) -> None:
    body = {**EXPORT, "encryption": {"scheme": "age", "key": "vault"}}

    response = client.post("/v1/tasks", json=body)

    assert response.status_code == 422
    assert "encryption key 'vault' is of kind aes256, not age" in response.text


def test_task_with_an_existing_key_is_created(client: Client) -> None:
    body = {**EXPORT, "encryption": {"scheme": "aes256", "key": "vault"}}

    response = client.post("/v1/tasks", json=body)

    assert response.status_code == 201, response.text


def test_schedule_with_an_unknown_encryption_key_is_422(client: Client) -> None:
    body = {
        "name": "nightly",
        "cron": "@daily",
        "window": "previous-day",
        "export": {**EXPORT, "encryption": {"scheme": "aes256", "key": "nosuch"}},
    }

    response = client.post("/v1/schedules", json=body)

    assert response.status_code == 422
    assert "unknown encryption key 'nosuch'" in response.text
