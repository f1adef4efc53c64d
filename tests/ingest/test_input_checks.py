"""The ingest command's own input: the account label, paths that are not regular files, and
CHECKSUM sidecars that name another file."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.datasets import OHLCV
from marketexport.datasets import POSITIONS as POSITIONS_DATASET
from marketexport.ingest import Hints, ingest_file, ingest_paths
from marketexport.store.duckdb import DuckDBStore

POSITIONS = "account/ccxt_static/binance_positions_linear_excerpt.json"


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("", "''"),
        ("   ", "'   '"),
        ("desk\x01", "'desk\\x01'"),
        (" desk", "' desk'"),
        ("desk\n", "'desk\\n'"),
        ("x" * 5000, "(5000 characters)"),
    ],
    ids=["empty", "spaces", "control", "leading-space", "newline", "huge"],
)
def test_bad_account_label_is_one_line_exit_2_before_the_store_opens(
    real: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], label: str, shown: str
) -> None:
    data_dir = tmp_path / "data"

    code = main(["--data-dir", str(data_dir), "ingest", str(real / POSITIONS), "--account", label])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("RequestError: invalid account ") and shown in err
    assert "letters, digits" in err and err.count("\n") == 1 and len(err) < 300
    assert not data_dir.exists()


def test_good_account_labels_are_accepted() -> None:
    for label in ("default", "main", "sub-1", "alice@desk.example", "a_b+c.d", "x" * 64):
        assert Hints(account=label).account == label


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def test_given_named_pipe_is_refused_with_exit_2_without_opening_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opening a FIFO for reading would wait for a writer forever: it is never opened."""
    pipe = _fifo(tmp_path / "BTCUSDT-1m-2026-09-15.csv")
    data_dir = tmp_path / "data"

    code = main(["--data-dir", str(data_dir), "ingest", str(pipe)])

    err = capsys.readouterr().err
    assert code == 2
    assert err == f"SourceError: {pipe}: a named pipe (FIFO), not a regular file; " + (
        "give files or directories of files\n"
    )
    assert not data_dir.exists()


def test_given_character_device_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path / "data"), "ingest", "/dev/null"])

    assert code == 2
    assert "/dev/null: a character device, not a regular file" in capsys.readouterr().err


def test_walk_reports_pipes_and_broken_links_and_imports_the_rest(
    real: Path, tmp_path: Path, store: DuckDBStore
) -> None:
    folder = tmp_path / "drop"
    good = folder / "a" / "binance_positions.json"
    good.parent.mkdir(parents=True)
    shutil.copy(real / POSITIONS, good)
    pipe = _fifo(folder / "b" / "BTCUSDT-1m-2026-09-15.csv")
    broken = folder / "c.json"
    broken.symlink_to(tmp_path / "gone.json")
    _fifo(folder / ".hidden-pipe")

    reports = ingest_paths([folder], store, Hints())

    errors = {Path(report.path).name: report.error for report in reports}
    assert set(errors) == {good.name, pipe.name, broken.name}
    assert errors[good.name] is None
    assert errors[pipe.name] == f"{pipe}: a named pipe (FIFO), not a regular file; " + (
        "give files or directories of files"
    )
    assert errors[broken.name] == f"{broken}: a link to a missing file"
    assert store.count(POSITIONS_DATASET) > 0


def test_checksum_sidecar_that_is_a_pipe_refuses_the_file_without_blocking(
    real: Path, tmp_path: Path, store: DuckDBStore
) -> None:
    target = tmp_path / "um" / "BTCUSDT-1h-2026-09-15.csv"
    target.parent.mkdir()
    shutil.copy(real / "ohlcv/binance_vision/um/BTCUSDT-1h-2026-09-15.csv", target)
    sidecar = _fifo(target.with_name(target.name + ".CHECKSUM"))

    report = ingest_file(target, store, Hints())

    assert report.error is not None and str(sidecar) in report.error
    assert "named pipe" in report.error
    assert store.count(OHLCV) == 0


def _um_klines(real: Path, tmp_path: Path) -> Path:
    target = tmp_path / "um" / "BTCUSDT-1h-2026-09-15.csv"
    target.parent.mkdir(exist_ok=True)
    shutil.copy(real / "ohlcv/binance_vision/um/BTCUSDT-1h-2026-09-15.csv", target)
    return target


def test_checksum_naming_another_file_is_refused_although_the_hash_matches(
    real: Path, tmp_path: Path, store: DuckDBStore
) -> None:
    target = _um_klines(real, tmp_path)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    sidecar = target.with_name(target.name + ".CHECKSUM")
    sidecar.write_text(f"{digest}  ETHUSDT-1h-2026-09-15.csv\n")

    report = ingest_file(target, store, Hints())

    assert report.error == (
        f"{target}: its checksum file {sidecar.name} is for 'ETHUSDT-1h-2026-09-15.csv', "
        "another file; file not imported"
    )
    assert store.count(OHLCV) == 0


@pytest.mark.parametrize(
    "line",
    ["{digest}  {name}", "{digest} *{name}", "{digest}", "{digest}  downloads/um/{name}"],
    ids=["text-mode", "binary-mode", "digest-only", "with-folder"],
)
def test_checksum_lines_that_name_this_file_or_none_are_accepted(
    real: Path, tmp_path: Path, store: DuckDBStore, line: str
) -> None:
    target = _um_klines(real, tmp_path)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    sidecar = target.with_name(target.name + ".CHECKSUM")
    sidecar.write_text(line.format(digest=digest, name=target.name) + "\n")

    report = ingest_file(target, store, Hints())

    assert report.ok, report.error
    assert store.count(OHLCV) == 3


@pytest.mark.parametrize(
    "content",
    ["", "not-a-digest  {name}\n", "{digest}  {name}\n{digest}  {name}\n"],
    ids=["empty", "no-digest", "two-lines"],
)
def test_malformed_checksum_file_refuses_its_file_naming_the_form(
    real: Path, tmp_path: Path, store: DuckDBStore, content: str
) -> None:
    target = _um_klines(real, tmp_path)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    sidecar = target.with_name(target.name + ".CHECKSUM")
    sidecar.write_text(content.format(digest=digest, name=target.name))

    report = ingest_file(target, store, Hints())

    assert report.error is not None
    assert report.error.startswith(f"{target}: its checksum file {sidecar.name} is unreadable")
    assert "sha256sum output" in report.error
    assert store.count(OHLCV) == 0
