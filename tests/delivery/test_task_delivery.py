"""A task with an SFTP destination: the server dies mid-upload, the retried task completes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from marketexport.delivery.sshlogin import PASSPHRASE_VARIABLE
from marketexport.request import build_request
from marketexport.tasks.model import TaskState
from marketexport.tasks.runner import Runner
from marketexport.tasks.store import TaskStore
from tests.delivery.conftest import PASSPHRASE, KeyDir, SecretWatch, SshServer, delivery_settings
from tests.delivery.test_sftp import sha256sum_check
from tests.tasks.conftest import build_candles


def cut_while_uploading(
    server: SshServer, remote: Path, at_bytes: int, seen: list[int], stop: threading.Event
) -> None:
    """Kill sshd once a temporary upload file reaches ``at_bytes``, then start it again."""
    while not stop.is_set():
        for part in remote.glob(".*.part") if remote.exists() else []:
            try:
                size = part.stat().st_size
            except FileNotFoundError:
                continue
            if size >= at_bytes:
                server.kill()
                seen.append(part.stat().st_size)
                server.start()
                return
        time.sleep(0.005)


@pytest.mark.slow
def test_task_retried_after_a_cut_connection_completes_with_one_copy(
    sshd: SshServer,
    key_dir: KeyDir,
    watch: SecretWatch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSPHRASE_VARIABLE, PASSPHRASE)
    settings = delivery_settings(tmp_path, key_dir.path, batch_rows=20_000)
    build_candles(Path(settings.store_url), 200_000)
    remote = tmp_path / "remote" / "inbox"
    tasks = TaskStore.open(settings)
    request = build_request(dataset="ohlcv", format="csv", destination=sshd.url(remote))
    task = tasks.submit(request, max_attempts=3)
    seen: list[int] = []
    stop = threading.Event()
    cutter = threading.Thread(
        target=cut_while_uploading, args=(sshd, remote, 4 << 20, seen, stop), daemon=True
    )
    records: list[dict[str, Any]] = []
    runner = Runner(settings, tasks, poll_s=0.02, retry_delay_s=0.05, progress_write_s=0.05)

    cutter.start()
    try:
        runner.run(until_idle=True)
    finally:
        stop.set()
        cutter.join(timeout=20)
    done = tasks.get(task.id)
    records.append(done.to_dict())
    tasks.close()
    # The stored task records, as the task store keeps them on disk (database and WAL).
    folder = Path(tasks.location).parent
    stored = [f.read_bytes().decode("latin-1") for f in folder.glob("*") if f.is_file()]
    watch.add(json.dumps(records), *stored)

    assert seen, "the upload was never cut"
    assert done.state is TaskState.COMPLETED, done.error
    assert done.attempts == 2
    delivery = done.result["delivery"]  # type: ignore[index]
    data = delivery["files"][0]
    assert data["resumed_from"] == seen[0] > 0
    assert sorted(p.name for p in remote.iterdir()) == sorted(
        [data["name"], f"{data['name']}.manifest.json", "SHA256SUMS"]
    )
    assert sha256sum_check(remote) == sorted([data["name"], f"{data['name']}.manifest.json"])
