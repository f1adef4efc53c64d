"""A task that encrypts runs with the key directory of the settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from marketexport.config import Settings
from marketexport.export.encryption.keygen import create_key
from marketexport.export.encryption.keys import KeyDirectory
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.tasks.model import TaskState
from marketexport.tasks.runner import Runner
from marketexport.tasks.store import TaskStore


def test_encrypted_task_completes_and_decrypts(
    task_settings: Settings, tasks: TaskStore, tmp_path: Path
) -> None:
    keys = KeyDirectory(task_settings.key_path)
    keys.ensure()
    create_key(keys, "aes256", "daily", 0)
    request = build_request(
        dataset="ohlcv",
        format="csv",
        compression="zstd",
        encryption={"scheme": "aes256", "key": "daily"},
    )
    task = tasks.submit(request, owner="alice")

    Runner(task_settings, tasks, concurrency=1).run(until_idle=True)
    done = tasks.get(task.id)
    path = Path(done.result["path"]) if done.result else None

    assert done.state == TaskState.COMPLETED, done.error
    assert path is not None and path.name.endswith(".csv.zst.mxe")
    assert verify_export(path).ok
    out = tmp_path / "plain.csv"
    decrypted = subprocess.run(
        [
            sys.executable,
            "-m",
            "marketexport",
            "--data-dir",
            str(task_settings.data_dir),
            "decrypt",
            str(path),
            "--key",
            "daily",
            "--decompress",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert decrypted.returncode == 0, decrypted.stderr
    assert out.read_text().count("\n") == 20_001
