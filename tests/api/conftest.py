"""A real `marketexport serve` on 127.0.0.1, with a demo store and two users."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from marketexport.api.auth import UserStore
from marketexport.config import load_settings
from marketexport.demo import load_demo
from marketexport.store.duckdb import DuckDBStore
from marketexport.tasks.store import task_store_path


@dataclass
class Service:
    url: str
    data_dir: Path
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]

    def client(self, user: str | None = "alice") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(data_dir: Path, extra_env: dict[str, str] | None = None) -> Service:
    settings = load_settings({"data_dir": data_dir}, environ={})
    users = UserStore(task_store_path(settings))
    tokens = {}
    for name, role in (("alice", "user"), ("bob", "user"), ("root", "admin")):
        users.add_user(name, role)
        tokens[name] = users.create_token(name)[1]
    users.close()
    port = free_port()
    env = {**os.environ, "MARKETEXPORT_DATA_DIR": str(data_dir), **(extra_env or {})}
    log = (data_dir / "serve.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "marketexport", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return Service(url, data_dir, tokens, process)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError((data_dir / "serve.log").read_text(errors="replace"))
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("service did not become ready in 60 s")


def stop_service(service: Service) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("service")
    store = DuckDBStore(data_dir / "store.duckdb")
    load_demo(store, minutes=24 * 60)
    store.close()
    running = start_service(data_dir)
    yield running
    stop_service(running)


def wait_for(client: httpx.Client, task_id: str, states: set[str], timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = client.get(f"/v1/tasks/{task_id}").json()
        if task["state"] in states:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not reach {states}: {task}")
