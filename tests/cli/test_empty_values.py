"""An option given as empty text is a one-line exit-2 error naming it, never its default
(``--output ""`` would write into the current directory, ``ingest ""`` walk it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.config import load_settings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "ohlcv", "--format", "csv", "--output", ""],
         "ConfigError: empty --output (expected a directory; leave the option out for its "
         "default)"),
        (["ingest", ""], "ConfigError: empty PATHS (expected files or directories)"),
        (["--store", "", "tasks", "list"],
         "ConfigError: empty --store (expected a DuckDB file or a postgresql:// URL; leave "
         "the option out for its default)"),
        (["--task-store", " ", "tasks", "list"], "ConfigError: empty --task-store ("),
        (["--config", "", "tasks", "list"], "ConfigError: empty --config ("),
        (["verify", ""], "ConfigError: empty PATH (expected an export or its manifest)"),
        (["decrypt", "x.mxe", "-o", "", "--force"], "ConfigError: empty --output (expected "
         "a file name"),
        (["decrypt", "x.mxe", "--key-file", ""], "ConfigError: empty --key-file ("),
        (["tasks", "list", "--state", ""], "RequestError: unknown task state '' (expected "
         "one of: pending, running"),
        (["export", "ohlcv", "--format", "csv", "--end", ""], "RequestError: invalid end ''"),
    ],
    ids=["output", "ingest-path", "store", "task-store", "config", "verify", "decrypt-output",
         "key-file", "state", "end"],
)  # fmt: skip
def test_empty_option_is_one_line_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"

    code = main(["--data-dir", str(data_dir), *args])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) in ([], ["data"])


def test_empty_data_dir_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", "", "tasks", "list"])

    assert code == 2
    assert capsys.readouterr().err.startswith("ConfigError: empty --data-dir (expected a dir")


def test_empty_environment_variable_is_still_read_as_unset(tmp_path: Path) -> None:
    settings = load_settings(
        {"data_dir": tmp_path}, environ={"MARKETEXPORT_STORE": "", "MARKETEXPORT_KEY_DIR": " "}
    )

    assert settings.store_url == str(tmp_path / "store.duckdb")
    assert settings.key_path == tmp_path / "keys"
