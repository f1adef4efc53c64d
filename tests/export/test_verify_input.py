"""``verify`` given something it cannot check: a path that does not exist or a public key
that is missing or not one is bad input (exit code 2); a damaged manifest names the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.demo import load_demo
from marketexport.errors import ManifestError
from marketexport.export.pipeline import ExportResult, run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore


@pytest.fixture
def exported(tmp_path: Path) -> ExportResult:
    store = DuckDBStore(tmp_path / "store.duckdb")
    load_demo(store, minutes=20)
    try:
        request = build_request(dataset="ohlcv", format="csv")
        return run_export(request, store, output_dir=tmp_path / "out")
    finally:
        store.close()


def _verify(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--data-dir", str(tmp_path / "data"), "verify", *args])
    return code, capsys.readouterr().err


def test_missing_path_is_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.csv"

    code, err = _verify(tmp_path, capsys, str(missing))

    assert code == 2
    assert err == (
        f"NotFoundError: {missing} does not exist (expected an export file, or its manifest "
        "nothing.csv.manifest.json)\n"
    )


def test_missing_public_key_is_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: ExportResult
) -> None:
    missing = tmp_path / "nonexistent.pub"

    code, err = _verify(tmp_path, capsys, str(exported.path), "--public-key", str(missing))

    assert code == 2
    assert err.startswith(f"NotFoundError: public key {missing} does not exist (expected a ")


def test_a_file_that_is_no_public_key_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: ExportResult
) -> None:
    not_a_key = tmp_path / "notes.pub"
    not_a_key.write_text("hello\nworld\n")

    code, err = _verify(tmp_path, capsys, str(exported.path), "--public-key", str(not_a_key))

    assert code == 2 and err.startswith("ConfigError: ") and str(not_a_key) in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("bytes"), "manifest field 'bytes.payload' is missing (expected a byte "
         "count)"),
        (lambda m: m.update(bytes=None), "manifest field 'bytes' is malformed: null (expected "
         "an object)"),
        (lambda m: m["sha256"].pop("payload"), "manifest field 'sha256.payload' is missing "
         "(expected a SHA-256 in hex)"),
        (lambda m: m.update(rows="12"), "manifest field 'rows' is malformed: text (expected a "
         "row count)"),
        (lambda m: m.update(schema=[None]), "manifest field 'schema' is malformed (expected a "
         "list of objects with a 'name' and a 'type')"),
    ],
    ids=["no-bytes", "null-bytes", "no-payload-sha", "rows-text", "schema-null"],
)  # fmt: skip
def test_a_damaged_manifest_names_the_field_and_what_it_should_hold(
    exported: ExportResult, change: object, message: str
) -> None:
    manifest = json.loads(exported.manifest_path.read_text())
    change(manifest)  # type: ignore[operator]
    exported.manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(ManifestError) as caught:
        verify_export(exported.path)

    assert str(caught.value) == message
