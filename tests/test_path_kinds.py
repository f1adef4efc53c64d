"""A directory where a file is expected, or a file where a directory is, is an input error
(exit 2) that says which it is, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.cli import main


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The data directory of the demo's sample store, built once for this module."""
    data = tmp_path_factory.mktemp("data")
    assert main(["--data-dir", str(data), "demo"]) == 0
    return str(data / "demo")


def export_csv(demo_store: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and stderr of a CSV export of the demo's candles with ``args`` added."""
    capsys.readouterr()
    code = main(["--data-dir", demo_store, "export", "ohlcv", "--format", "csv", *args])
    return code, capsys.readouterr().err


def test_verify_of_a_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_decrypt_into_a_directory_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "x.bin"
    source.write_bytes(b"not encrypted")
    target = tmp_path / "out"
    target.mkdir()
    (target / "kept").write_text("kept")

    assert main(["decrypt", str(source), "-o", str(target), "--force"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["kept"]


def test_export_into_a_file_path_is_refused(
    tmp_path: Path, demo_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken.csv"
    taken.write_text("mine")

    code, err = export_csv(demo_store, capsys, "--output", str(taken))

    assert code == 2
    assert "is a file, not a directory" in err
    assert taken.read_text() == "mine"


def test_an_export_refused_for_its_key_leaves_no_directory_behind(
    tmp_path: Path, demo_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "out"

    code, err = export_csv(demo_store, capsys, "--sign", "nosuch", "--output", str(out))

    assert code == 2
    assert "no key named 'nosuch'" in err
    assert not (tmp_path / "new").exists()


def test_a_local_destination_that_cannot_take_files_is_refused_before_the_export(
    tmp_path: Path, demo_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    out = tmp_path / "out"

    code, err = export_csv(
        demo_store, capsys, "--output", str(out), "--destination", str(blocker / "dest")
    )

    assert code == 2
    assert f"destination {blocker / 'dest'} cannot take files" in err
    assert not out.exists()
