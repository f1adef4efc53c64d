"""The ingest command's own input: the account label, paths that are not regular files, and
CHECKSUM sidecars that name another file."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.ingest import Hints

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
