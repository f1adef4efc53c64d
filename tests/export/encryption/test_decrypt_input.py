"""``marketexport decrypt`` given something that is not an encrypted export: exit code 2 and
one line naming the file and what was expected; no output file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.export.encryption.container import MAGIC

EXPECTED = (
    "expected a marketexport container, FILE.mxe from 'marketexport export --encrypt', or an "
    "age file)\n"
)


def _decrypt(tmp_path: Path, target: Path) -> int:
    return main(["--data-dir", str(tmp_path / "data"), "decrypt", str(target)])


@pytest.mark.parametrize(
    ("content", "shown"),
    [
        (b"exchange,symbol,time\n", "is not an encrypted export (it starts with b'exchange,sym'; "),
        (b"\x08v\x14\xcb", "is not an encrypted export (it starts with b'\\x08v\\x14\\xcb'; "),
        (b"", "is empty ("),
    ],
    ids=["csv", "random-bytes", "empty"],
)
def test_file_that_is_not_encrypted_is_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, shown: str
) -> None:
    source = tmp_path / "export.csv.mxe"
    source.write_bytes(content)

    code = _decrypt(tmp_path, source)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == f"ConfigError: {source} {shown}{EXPECTED}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv.mxe"]


def test_missing_file_directory_and_pipe_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "gone.mxe"
    pipe = tmp_path / "pipe.mxe"
    os.mkfifo(pipe)

    codes = [_decrypt(tmp_path, path) for path in (missing, tmp_path, pipe)]

    lines = capsys.readouterr().err.splitlines()
    assert codes == [2, 2, 2]
    assert lines == [
        f"ConfigError: {missing}: no such file ({EXPECTED[:-1]}",
        f"ConfigError: {tmp_path} is a directory ({EXPECTED[:-1]}",
        f"ConfigError: {pipe} is not a regular file ({EXPECTED[:-1]}",
    ]


def test_damaged_container_is_still_a_decryption_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first bytes say 'container': what is wrong after them is the file's damage."""
    source = tmp_path / "cut.csv.mxe"
    source.write_bytes(MAGIC + b"\x01\x00\x00\x00\x05{")

    code = _decrypt(tmp_path, source)

    assert code == 1
    assert capsys.readouterr().err.startswith("EncryptionError: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.csv.mxe"]
