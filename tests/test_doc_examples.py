"""The command examples of the README and docs/encryption.md work as written, run in a fresh
directory beside the sample data (``../shared``), and the docs' figures match the code."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.datasets import DECIMAL_TYPE
from tests.conftest import REPO


def _block(text: str, after: str, fence: str = "```sh\n") -> str:
    """The first fenced block after the heading ``after``."""
    return text.split(after, 1)[1].split(fence, 1)[1].split("```", 1)[0]


def _commands(block: str) -> list[str]:
    """The block's command lines, continuations joined and comments dropped."""
    joined = block.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            found.append(line.strip())
    return found


def _run(command: str, monkeypatch: pytest.MonkeyPatch) -> int:
    words = shlex.split(command, comments=True)
    while "=" in words[0] and not words[0].startswith("-"):
        name, value = words.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    expanded: list[str] = []
    for word in words:
        matches = sorted(glob.glob(word)) if "*" in word else []
        assert len(matches) <= 1, f"{word} matches {matches}"
        expanded.extend(matches or [word])
    if expanded[0] == "marketexport":
        return main(expanded[1:])
    return subprocess.run(expanded, check=False).returncode


@pytest.fixture
def workdir(real: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory with ``../shared`` beside it, as the README assumes."""
    (tmp_path / "shared").symlink_to(real.parent.parent)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in list(os.environ):
        if name.startswith("MARKETEXPORT_"):
            monkeypatch.delenv(name)
    return work


@pytest.mark.slow
def test_readme_use_and_encryption_examples_run_as_written(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    use = _commands(_block(readme, "## Use"))
    encryption = [
        command
        for command in _commands(_block(readme, "## Encryption, signatures, delivery"))
        if "--destination" not in command  # a remote host: not contacted by tests
    ]

    for command in use[:3] + encryption:
        assert _run(command, monkeypatch) == 0, (command, capsys.readouterr().err)

    sums = (workdir / "exports" / "SHA256SUMS").read_text().splitlines()
    for line in sums:
        digest, name = line.split(maxsplit=1)
        data = (workdir / "exports" / name.lstrip("*")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert use[3] == "(cd exports && sha256sum -c SHA256SUMS)"


@pytest.mark.slow
def test_encryption_guide_examples_run_as_written(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    guide = (REPO / "docs" / "encryption.md").read_text(encoding="utf-8")
    setup = [
        *_commands(_block(readme, "## Use"))[:1],
        "marketexport ingest ../shared/data/real/account/coinbase_exchange",
    ]
    examples = _commands(_block(guide, "### Examples", "```bash\n"))
    if shutil.which("age") is None:
        examples = [command for command in examples if not command.startswith("age ")]

    for command in setup + examples:
        assert _run(command, monkeypatch) == 0, (command, capsys.readouterr().err)

    assert any(path.name.endswith(".parquet") for path in (workdir / "exports").iterdir())


def test_formats_guide_gives_the_xsd_decimal_digits() -> None:
    guide = (REPO / "docs" / "formats.md").read_text(encoding="utf-8")
    schema = (REPO / "src" / "marketexport" / "schemas" / "ohlcv.xsd").read_text()

    digits = (DECIMAL_TYPE.precision, DECIMAL_TYPE.scale)
    assert f"at most {digits[0]} digits, {digits[1]} after the point" in guide
    assert re.search(rf'fractionDigits value="{digits[1]}"', schema)
    assert re.search(rf'totalDigits value="{digits[0]}"', schema)
