"""Keys a person names on the command line: a key file of the wrong length and a public key
given as an identity are bad input (exit code 2) with messages that say what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.demo import load_demo
from marketexport.errors import EncryptionError, KeyFileError
from marketexport.export.encryption.keys import KeyDirectory, parse_aes_key
from marketexport.store.duckdb import DuckDBStore


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with a small demo store."""
    store = DuckDBStore(tmp_path / "data" / "store.duckdb")
    load_demo(store, minutes=30)
    store.close()
    return tmp_path / "data"


@pytest.mark.parametrize("size", [31, 33])
def test_aes_key_file_of_wrong_length_is_exit_2_naming_the_length(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], size: int
) -> None:
    key_file = tmp_path / "key.bin"
    key_file.write_bytes(b"\x07" * size)
    key_file.chmod(0o600)
    out = tmp_path / "out"

    args = ["export", "ohlcv", "--format", "csv", "--encrypt", "aes256"]

    code = main(["--data-dir", str(data_dir), *args, "--key-file", str(key_file),
                 "--output", str(out)])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2 and not out.exists()  # nothing written, not even the directory
    assert err == (
        f"KeyFileError: {key_file} does not hold a 32-byte AES-256 key (found {size} bytes; "
        "expected 32 raw bytes, 64 hex digits or base64 of 32 bytes; keys are never padded "
        "or cut)\n"
    )


def test_key_file_error_is_still_an_encryption_error() -> None:
    with pytest.raises(EncryptionError) as caught:
        parse_aes_key(b"short", "key.bin")

    assert isinstance(caught.value, KeyFileError) and caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("kind", "public", "private"),
    [("rsa", "partner.rsa.pub.pem", "partner.rsa.pem"), ("age", "partner.age.pub", "partner.age")],
)
def test_public_key_given_as_identity_is_named_as_a_public_key(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    public: str,
    private: str,
) -> None:
    keys = KeyDirectory(data_dir / "keys")
    keys.generate(kind, "partner", bits=2048)
    given = tmp_path / public
    shutil.copy(keys.path / public, given)
    given.chmod(0o644)
    recipient = str(given) if kind == "rsa" else given.read_text().strip()
    scheme = "rsa2048" if kind == "rsa" else "age"
    out = tmp_path / "out"
    export = ["export", "ohlcv", "--format", "csv", "--encrypt", scheme, "--recipient", recipient]
    assert main(["--data-dir", str(data_dir), *export, "--output", str(out)]) == 0
    encrypted = next(path for path in out.glob("*.csv*") if "manifest" not in path.name)
    capsys.readouterr()

    code = main(["--data-dir", str(data_dir), "decrypt", str(encrypted), "--identity",
                 str(given), "-o", str(tmp_path / "x.csv")])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"ConfigError: key file {given} holds a public key; decrypting and signing need the "
        f"private key (for {public}, probably {private} beside it); public keys are for "
        "--recipient and --public-key\n"
    )
    assert not (tmp_path / "x.csv").exists()
