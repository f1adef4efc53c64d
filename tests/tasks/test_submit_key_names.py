"""Tasks and schedules name keys that are read only when they run: a name the key directory
does not hold (or holds as another kind) is refused when submitted, naming the key and the
keys of the needed kind, and nothing is queued."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.export.encryption import KeyRing
from marketexport.export.encryption.keys import KeyDirectory
from tests.tasks.helpers import queued_tasks


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    keys = KeyDirectory(tmp_path / "data" / "keys")
    keys.generate("aes256", "vault")
    keys.generate("signing", "release")
    return tmp_path / "data"


def _submit(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "tasks", "submit", "ohlcv", "--format", "csv", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--encrypt", "aes256", "--key", "nosuch"],
            "RequestError: unknown encryption key 'nosuch': the key directory has no such key "
            "(aes256 keys in the key directory: vault; create one with 'marketexport keys "
            "generate aes256 NAME')\n",
        ),
        (
            ["--sign", "nokey"],
            "RequestError: unknown signing key 'nokey': the key directory has no such key "
            "(signing keys in the key directory: release; create one with 'marketexport keys "
            "generate signing NAME')\n",
        ),
        (
            ["--sign", "vault"],
            "RequestError: signing key 'vault' is of kind aes256, not signing (signing keys in "
            "the key directory: release; create one with 'marketexport keys generate signing "
            "NAME')\n",
        ),
        (
            ["--encrypt", "fernet", "--key", "vault"],
            "RequestError: encryption key 'vault' is of kind aes256, not fernet (fernet keys in "
            "the key directory: none; create one with 'marketexport keys generate fernet "
            "NAME')\n",
        ),
    ],
    ids=["unknown-encryption-key", "unknown-signing-key", "wrong-kind-sign", "wrong-kind-fernet"],
)
def test_submit_refuses_key_names_the_directory_lacks(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = _submit(data_dir, *args)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == message and captured.out == ""
    assert queued_tasks(data_dir) == 0


def test_submit_with_keys_that_exist_isqueued_tasks(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _submit(data_dir, "--encrypt", "aes256", "--key", "vault", "--sign", "release")

    assert code == 0, capsys.readouterr().err
    assert queued_tasks(data_dir) == 1


def test_default_signing_key_setting_is_checked_too(data_dir: Path) -> None:
    from marketexport.errors import RequestError
    from marketexport.export.encryption import check_key_names

    ring = KeyRing(KeyDirectory(data_dir / "keys"), {}, signing_key="gone")

    with pytest.raises(RequestError, match=r"default signing key \(setting signing_key\) 'gone'"):
        check_key_names(None, None, ring)


def test_schedule_add_refuses_an_unknown_key(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["schedule", "add", "nightly", "--cron", "@daily", "--window", "previous-day"]

    code = main(["--data-dir", str(data_dir), *arguments, "--", "ohlcv", "--format", "csv",
                 "--encrypt", "aes256", "--key", "nosuch"])  # fmt: skip

    assert code == 2
    assert capsys.readouterr().err.startswith("RequestError: unknown encryption key 'nosuch'")
