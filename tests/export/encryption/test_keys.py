"""The key directory: permissions, atomic creation, listing without secrets, refusals."""

from __future__ import annotations

import base64
import os
import pickle
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketexport.cli import cli
from marketexport.errors import ConfigError, EncryptionError, NotFoundError
from marketexport.export.encryption import DecryptionKeys, EncryptionSpec, KeyRing
from marketexport.export.encryption.keygen import rotate_fernet
from marketexport.export.encryption.keys import (
    KINDS,
    KeyDirectory,
    Secret,
    check_private_file,
    parse_aes_key,
)

from .test_schemes import decrypt, encrypt


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_makes_private_files_in_a_private_directory(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys")

    infos = [directory.generate(kind, f"key-{kind}", bits=2048) for kind in KINDS]

    assert _mode(directory.path) == 0o700
    for info in infos:
        assert _mode(info.path) == 0o600
        if info.public_path is not None:
            assert _mode(info.public_path) == 0o644
    assert not [p for p in directory.path.iterdir() if p.name.startswith(".")]
    assert sorted(i.name for i in directory.list()) == sorted(i.name for i in infos)


def test_listing_shows_fingerprints_never_secrets(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys")
    for kind in ("aes256", "fernet", "age", "signing"):
        directory.generate(kind, kind)
    aes_hex = (directory.path / "aes256.aes256").read_text().strip()
    fernet_key = (directory.path / "fernet.fernet").read_text().strip()
    age_secret = (directory.path / "age.age").read_text().splitlines()[1]
    signing_secret = (directory.path / "signing.minisign.key").read_text().splitlines()[1]

    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "keys", "list", "--json"])
    text = result.output

    assert result.exit_code == 0
    assert "aes256" in text and "mx1:" in text and "age1" in text
    for secret in (aes_hex, fernet_key, age_secret, signing_secret[20:60]):
        assert secret not in text
    assert "AGE-SECRET-KEY" not in text


def test_a_name_is_never_replaced(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys")
    directory.generate("aes256", "prod")
    before = (directory.path / "prod.aes256").read_bytes()

    with pytest.raises(ConfigError, match="already exists"):
        directory.generate("fernet", "prod")

    assert (directory.path / "prod.aes256").read_bytes() == before
    assert not (directory.path / "prod.fernet").exists()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "has space", "x" * 65, ".hidden"])
def test_bad_key_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="invalid key name"):
        KeyDirectory(tmp_path / "keys").generate("aes256", name)


def test_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys")
    directory.generate("aes256", "k")
    ring = KeyRing(directory, {})
    sealed = encrypt(ring, "aes256", b"secret rows")
    os.chmod(directory.path / "k.aes256", 0o644)

    with pytest.raises(ConfigError, match="chmod 600") as caught:
        decrypt(ring, DecryptionKeys(keys=("k",)), sealed, 1000)
    with pytest.raises(ConfigError, match="0644"):
        encrypt(ring, "aes256", b"more rows")

    assert "k.aes256" in str(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_group_or_other_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key.bin"
    path.write_bytes(os.urandom(32))
    os.chmod(path, mode)

    with pytest.raises(ConfigError, match="refused"):
        check_private_file(path)


def test_export_never_creates_a_key(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys")
    ring = KeyRing(directory, {})

    with pytest.raises(NotFoundError, match="no key named 'missing'"):
        from marketexport.export.encryption import open_encryptor

        open_encryptor(EncryptionSpec("aes256", key="missing"), ring, {})

    assert not directory.path.exists()


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"\x01" * 31, 31),
        (b"\x01" * 33, 33),
        (b"ab" * 16 + b"\n", 16),
        (base64.b64encode(b"\x02" * 24) + b"\n", 24),
    ],
)
def test_aes_key_of_wrong_length_is_refused(data: bytes, found: int) -> None:
    with pytest.raises(EncryptionError, match=f"found {found} bytes") as caught:
        parse_aes_key(data, "key.bin")

    assert "never padded or cut" in str(caught.value)


@pytest.mark.parametrize(
    "encode",
    [lambda k: k, lambda k: k.hex().encode() + b"\n", lambda k: base64.b64encode(k) + b"\n"],
)
def test_aes_key_forms(encode) -> None:  # type: ignore[no-untyped-def]
    key = os.urandom(32)

    assert parse_aes_key(encode(key), "key.bin").reveal() == key


def test_key_file_round_trip(tmp_path: Path, key_dir: KeyDirectory) -> None:
    key_file = tmp_path / "k.bin"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o600)
    ring = KeyRing(key_dir, {})
    from marketexport.export.encryption import open_encryptor

    stage = open_encryptor(EncryptionSpec("aes256", key_file=str(key_file)), ring, {})
    sealed = stage.write(b"rows") + stage.flush()

    assert decrypt(ring, DecryptionKeys(key_file=str(key_file)), sealed, 7) == b"rows"


def test_fernet_rotation_keeps_old_files_readable(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys")
    directory.generate("fernet", "f")
    ring = KeyRing(directory, {})
    old = encrypt(ring, "fernet", b"before rotation")
    first = directory.list()[0].fingerprints

    info = rotate_fernet(directory, "f")
    new = encrypt(ring, "fernet", b"after rotation")

    assert len(info.fingerprints) == 2 and info.fingerprints[1] == first[0]
    assert _mode(directory.path / "f.fernet") == 0o600
    assert decrypt(ring, DecryptionKeys(keys=("f",)), old, 100) == b"before rotation"
    assert decrypt(ring, DecryptionKeys(keys=("f",)), new, 100) == b"after rotation"


def test_secrets_hide_in_repr_and_refuse_pickling() -> None:
    secret = Secret(b"super secret key material")

    assert "super" not in repr(secret) and "super" not in str(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_rsa_recipient_under_2048_bits_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = tmp_path / "small.pub.pem"
    pem.write_bytes(
        small.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    from marketexport.request import build_request

    with pytest.raises(ConfigError, match="1024-bit"):
        build_request(
            dataset="ohlcv",
            format="csv",
            encryption=EncryptionSpec("rsa2048", recipients=(str(pem),)),
        )


def test_listing_flags_a_loose_key_file_without_reading_it(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys")
    directory.generate("aes256", "loose")
    directory.generate("fernet", "tight")
    os.chmod(directory.path / "loose.aes256", 0o644)
    secret = (directory.path / "loose.aes256").read_text().strip()

    listed = {info.name: info for info in directory.list()}

    assert listed["loose"].fingerprints[0].startswith("unusable: ConfigError")
    assert "0644" in listed["loose"].fingerprints[0]
    assert secret not in listed["loose"].fingerprints[0]
    assert listed["tight"].fingerprints[0].startswith("mx1:")
