"""Local directory destination, and --destination on the export command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketexport.cli import cli, main
from marketexport.datasets import OHLCV
from marketexport.delivery import deliver
from marketexport.errors import DeliveryError
from marketexport.export.manifest import Manifest
from marketexport.store.duckdb import DuckDBStore
from tests.delivery.conftest import Exports, delivery_settings, ohlcv_table
from tests.delivery.test_sftp import sha256sum_check


@pytest.mark.slow
def test_local_delivery_merges_sums_and_replaces_its_temporary_file(
    exports: Exports, tmp_path: Path
) -> None:
    settings = delivery_settings(tmp_path, tmp_path / "keys")
    target = tmp_path / "inbox"
    first = exports.run("csv", rows=300)
    second = exports.run("parquet", rows=300)
    target.mkdir()
    (target / f".{second.path.name}.part").write_bytes(b"left by a crash")

    deliver(first, str(target), settings, environ={})
    receipt = deliver(second, str(target), settings, environ={})

    names = sorted(n for r in (first, second) for n in (r.path.name, r.manifest_path.name))
    assert sha256sum_check(target) == names
    assert sorted(p.name for p in target.iterdir()) == sorted([*names, "SHA256SUMS"])
    assert [f.name for f in receipt.files][-1] == "SHA256SUMS"
    assert (target / second.path.name).read_bytes() == second.path.read_bytes()


@pytest.mark.slow
def test_delivery_into_the_export_directory_changes_nothing(
    exports: Exports, tmp_path: Path
) -> None:
    result = exports.run("jsonl", rows=100)
    before = {p.name: p.read_bytes() for p in result.path.parent.iterdir()}

    receipt = deliver(result, str(result.path.parent), delivery_settings(tmp_path, tmp_path))

    assert receipt.files == []
    assert {p.name: p.read_bytes() for p in result.path.parent.iterdir()} == before


@pytest.mark.slow
def test_a_changed_local_file_is_not_delivered(exports: Exports, tmp_path: Path) -> None:
    result = exports.run("csv", rows=100)
    copy = tmp_path / "changed.csv"
    copy.write_bytes(result.path.read_bytes().replace(b"binance", b"binancf", 1))
    result.path = copy
    target = tmp_path / "inbox"

    with pytest.raises(DeliveryError) as caught:
        deliver(result, str(target), delivery_settings(tmp_path, tmp_path))

    assert "does not match its manifest" in str(caught.value)
    assert not caught.value.retryable
    assert sorted(p.name for p in target.iterdir()) == []


def test_export_command_delivers_to_destination(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = DuckDBStore(data / "store.duckdb")
    store.insert([(OHLCV, ohlcv_table(200).to_batches())])
    store.close()
    target = tmp_path / "inbox"

    done = CliRunner().invoke(
        cli,
        ["--data-dir", str(data), "export", "ohlcv", "--format", "csv"]
        + ["--destination", str(target)],
    )

    assert done.exit_code == 0, done.output
    assert "delivered 3 files to" in done.output
    delivered = [p for p in target.iterdir() if p.name.endswith(".manifest.json")]
    manifest = Manifest.from_dict(json.loads(delivered[0].read_text()))
    assert manifest.rows == 200 and manifest.request["destination"] == str(target)
    assert len(sha256sum_check(target)) == 2


def test_export_command_refuses_a_password_in_the_destination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--data-dir", str(tmp_path), "export", "ohlcv", "--format", "csv"]
        + ["--destination", "sftp://bob:hunter2-secret@127.0.0.1/x"]
    )

    printed = capsys.readouterr()
    assert code == 2
    assert printed.err.startswith("RequestError: destination sftp://bob:***@127.0.0.1/x")
    assert "carries a password" in printed.err
    assert "hunter2-secret" not in printed.out + printed.err
