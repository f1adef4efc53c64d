"""The command line end to end: keys persist across processes, no secret leaks anywhere,
and bad input gets a clear message and the right exit code."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.config import load_settings
from marketexport.datasets import OHLCV
from marketexport.errors import ExportError
from marketexport.export.encryption import DecryptionKeys, EncryptionSpec, KeyRing
from marketexport.export.encryption.decrypt import decrypt_file
from marketexport.export.pipeline import run_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import table_of

from .test_export_roundtrip import ROWS

CLI = [sys.executable, "-c", "from marketexport.cli import run; run()"]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETEXPORT_")}
    environ.update(env or {})
    return subprocess.run(CLI + args, capture_output=True, text=True, env=environ, timeout=120)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    store = DuckDBStore(directory / "store.duckdb")
    store.insert([(OHLCV, table_of(OHLCV, ROWS).to_batches())])
    store.close()
    return directory


@pytest.mark.slow
def test_a_key_outlives_the_process(data_dir: Path, tmp_path: Path) -> None:
    """Export in one interpreter, decrypt in a fresh one: the key was kept, not invented."""
    base = ["--data-dir", str(data_dir)]
    assert _run([*base, "keys", "generate", "aes256", "daily"]).returncode == 0
    out = tmp_path / "out"

    exported = _run(
        [*base, "export", "ohlcv", "--format", "csv", "--compression", "zstd"]
        + ["--encrypt", "aes256", "--key", "daily", "--output", str(out), "--json"]
    )
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads(exported.stdout)
    encrypted = out / manifest["file"]
    decrypted = _run([*base, "decrypt", str(encrypted), "--key", "daily", "--decompress"])
    verified = _run([*base, "verify", str(encrypted), "--key", "daily"])

    assert decrypted.returncode == 0, decrypted.stderr
    plain = out / manifest["file"].removesuffix(".zst.mxe")
    assert plain.read_text(encoding="utf-8").count("\n") == len(ROWS) + 1
    assert manifest["encryption"]["key"]["name"] == "daily"
    assert verified.returncode == 0 and "rows" in verified.stdout


@pytest.mark.slow
def test_cli_refuses_a_world_readable_key(data_dir: Path, tmp_path: Path) -> None:
    base = ["--data-dir", str(data_dir)]
    _run([*base, "keys", "generate", "aes256", "loose"])
    (data_dir / "keys" / "loose.aes256").chmod(0o644)

    done = _run(
        [*base, "export", "ohlcv", "--format", "csv", "--encrypt", "aes256", "--key", "loose"]
        + ["--output", str(tmp_path / "out")]
    )

    assert done.returncode == 2
    assert done.stderr.startswith("ConfigError: key file") and "0644" in done.stderr
    assert not list((tmp_path / "out").glob("*.mxe"))


def test_no_secret_in_logs_errors_or_manifest(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    passphrase = "Unique-Passphrase-7f3a9c"
    key = bytes(range(100, 132))
    key_file = tmp_path / "export.key"
    key_file.write_bytes(key.hex().encode())
    key_file.chmod(0o600)
    settings = load_settings({"data_dir": data_dir}, environ={})
    ring = KeyRing.from_settings(settings, environ={"EXPORT_PASS": passphrase})
    store = DuckDBStore(data_dir / "store.duckdb")
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []

    results = []
    for i, spec in enumerate(
        (
            EncryptionSpec("aes256", passphrase_env="EXPORT_PASS"),
            EncryptionSpec("aes256", key_file=str(key_file)),
        )
    ):
        request = build_request(dataset="ohlcv", format="jsonl", encryption=spec)
        results.append(run_export(request, store, output_dir=tmp_path / f"out{i}", keys=ring))
        errors.append(repr(request))
        errors.append(json.dumps(request.to_dict()))
    store.close()
    wrong = KeyRing.from_settings(settings, environ={"EXPORT_PASS": "wrong " + passphrase})
    for offered in (DecryptionKeys(passphrase_env="EXPORT_PASS"), DecryptionKeys()):
        with pytest.raises(ExportError) as caught:
            decrypt_file(results[0].path, tmp_path / "plain", offered, wrong)
        errors.append(str(caught.value))
    errors.append(repr(ring) + str(ring))

    texts = [record.getMessage() for record in caplog.records] + errors
    for result in results:
        texts.append(result.manifest_path.read_text())
        texts.append(result.path.read_bytes().decode("latin-1"))
    joined = "\n".join(texts)
    for secret in (passphrase, key.hex(), key.hex().upper(), key.decode("latin-1")):
        assert secret not in joined
    assert "EXPORT_PASS" in results[0].manifest_path.read_text()


def test_cli_decrypt_with_a_wrong_key_leaves_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data-dir", str(data_dir)]
    for name in ("right", "wrong"):
        assert main([*base, "keys", "generate", "aes256", name]) == 0
    out = tmp_path / "out"
    args = ["export", "ohlcv", "--format", "csv", "--encrypt", "aes256", "--key", "right"]
    assert main([*base, *args, "--output", str(out)]) == 0
    encrypted = next(out.glob("*.mxe"))
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()

    code = main([*base, "decrypt", str(encrypted), "--key", "wrong"])

    assert code == 1
    assert capsys.readouterr().err.startswith("EncryptionError: wrong key")
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--encrypt", "aes512"], "'aes512'"),
        (["--encrypt", "aes256"], "exactly one of"),
        (["--encrypt", "aes256", "--key", "a", "--passphrase-env", "P"], "exactly one of"),
        (["--encrypt", "aes256", "--passphrase-env", "MY PASS"], "'MY PASS'"),
        (["--encrypt", "rsa2048"], "--recipient"),
        (["--encrypt", "rsa2048", "--recipient", "/nonexistent.pem"], "/nonexistent.pem"),
        (["--encrypt", "fernet", "--passphrase-env", "P"], "Fernet has no passphrase"),
        (["--encrypt", "age", "--recipient", "age1notarecipient"], "age"),
        (["--key", "a"], "without --encrypt"),
        (["--sign", "../x"], "invalid key name"),
    ],
)
def test_bad_encryption_flags_exit_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    code = main(["--data-dir", str(data_dir), "export", "ohlcv", "--format", "csv", *args])

    assert code == 2
    assert named in capsys.readouterr().err


def test_missing_passphrase_variable_is_named(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ.pop("NO_SUCH_PASSPHRASE_VAR", None)
    args = ["export", "ohlcv", "--format", "csv", "--encrypt", "aes256"]
    args += ["--passphrase-env", "NO_SUCH_PASSPHRASE_VAR", "--output", str(tmp_path / "o")]

    code = main(["--data-dir", str(data_dir), *args])

    assert code == 2
    assert "'NO_SUCH_PASSPHRASE_VAR' is not set" in capsys.readouterr().err
    assert not list((tmp_path / "o").glob("*.mxe"))
