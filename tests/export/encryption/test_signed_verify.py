"""verify on a signed export: checked with --public-key or the key directory's key the
manifest names, and said plainly when neither is there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.export.encryption import EncryptionSpec, KeyRing
from marketexport.export.encryption.keys import KeyDirectory
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore

from .test_export_roundtrip import filled  # noqa: F401 - fixture


def _signed(
    store: DuckDBStore, ring: KeyRing, out: Path, encryption: EncryptionSpec | None = None
) -> Path:
    request = build_request(dataset="ohlcv", format="csv", sign_key="s", encryption=encryption)
    return run_export(request, store, output_dir=out, keys=ring).path


def test_signed_export_without_a_key_says_the_signature_was_not_checked(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
) -> None:
    path = _signed(filled, ring, tmp_path / "out")
    fingerprint = json.loads(Path(f"{path}.manifest.json").read_text())["signed_by"]
    empty = KeyRing(KeyDirectory(tmp_path / "no-keys"), {})

    report = verify_export(path, keys=empty)

    assert report.ok and report.signature == "not checked"
    assert not any("signature" in item for item in report.checked)
    assert report.skipped == [
        f"signatures (the manifest is signed by key {fingerprint}, which is not in the key "
        f"directory {tmp_path / 'no-keys'}; give --public-key KEY.minisign.pub to check who "
        "wrote it)"
    ]
    assert "payload sha256" in report.checked and "rows" in report.checked


def test_cli_prints_the_unchecked_signature_and_json_carries_it(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _signed(filled, ring, tmp_path / "out")
    elsewhere = ["--data-dir", str(tmp_path / "elsewhere")]

    code = main([*elsewhere, "verify", str(path)])
    text = capsys.readouterr().out
    json_code = main([*elsewhere, "verify", str(path), "--json"])
    shown = json.loads(capsys.readouterr().out)

    assert code == 0 and json_code == 0
    assert text.splitlines()[0].startswith(f"OK {path}: ")
    assert text.splitlines()[1].startswith("not checked: signatures (the manifest is signed by")
    assert shown["signature"] == "not checked" and shown["ok"] is True


def test_key_directory_key_named_by_the_manifest_checks_the_signature(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
) -> None:
    path = _signed(filled, ring, tmp_path / "out")
    manifest = Path(f"{path}.manifest.json")

    report = verify_export(path, keys=ring)
    manifest.write_text(manifest.read_text().replace('"rows": 700', '"rows": 7'))
    changed = verify_export(path, keys=ring)

    assert report.ok and report.signature == "checked" and not report.skipped
    assert "manifest signature (key 's' of the key directory)" in report.checked
    assert not changed.ok and changed.signature == "failed"
    assert any("does not match" in problem for problem in changed.problems)


def test_unsigned_export_reports_unsigned_and_skips_nothing(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
) -> None:
    request = build_request(dataset="ohlcv", format="csv")
    path = run_export(request, filled, output_dir=tmp_path, keys=ring).path

    report = verify_export(path, keys=ring)

    assert report.ok and report.signature == "unsigned" and report.skipped == []


def test_encrypted_signed_export_without_keys_skips_payload_and_signature(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
) -> None:
    path = _signed(filled, ring, tmp_path / "out", encryption=EncryptionSpec("aes256", key="k"))

    report = verify_export(path)

    assert report.ok and report.signature == "not checked"
    assert [item.split(" ")[0] for item in report.skipped] == ["payload", "signatures"]
    assert report.checked == ["file bytes", "file sha256"]
