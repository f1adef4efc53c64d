"""Fixtures for the encryption tests: a key directory with one key of each kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.export.encryption import DecryptionKeys, EncryptionSpec, KeyRing
from marketexport.export.encryption.keys import KeyDirectory

PASSPHRASE = "tr0ub4dor & 3 correct-horse"


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> KeyDirectory:
    """One key of each kind (RSA at 2048 bits to keep key generation short)."""
    directory = KeyDirectory(tmp_path_factory.mktemp("keyring") / "keys")
    for kind, name in [
        ("aes256", "k"),
        ("rsa", "r"),
        ("fernet", "f"),
        ("signing", "s"),
        ("age", "g"),
        ("aes256", "other"),
        ("rsa", "r2"),
        ("fernet", "f2"),
        ("age", "g2"),
    ]:
        directory.generate(kind, name, bits=2048)
    return directory


@pytest.fixture
def ring(key_dir: KeyDirectory) -> KeyRing:
    return KeyRing(key_dir, {"EXPORT_PASSPHRASE": PASSPHRASE, "WRONG_PASSPHRASE": "not it"})


def scheme_cases(key_dir: KeyDirectory) -> dict[str, tuple[EncryptionSpec, DecryptionKeys]]:
    """For every scheme: how to encrypt, and the keys that open the result."""
    rsa_public = str(key_dir.public_path("r", "rsa"))
    return {
        "aes256": (EncryptionSpec("aes256", key="k"), DecryptionKeys(keys=("k",))),
        "rsa2048": (
            EncryptionSpec("rsa2048", recipients=(rsa_public,)),
            DecryptionKeys(identity=str(key_dir.private_path("r", "rsa"))),
        ),
        "fernet": (EncryptionSpec("fernet", key="f"), DecryptionKeys(keys=("f",))),
        "age": (EncryptionSpec("age", key="g"), DecryptionKeys(keys=("g",))),
    }


def wrong_keys(key_dir: KeyDirectory) -> dict[str, DecryptionKeys]:
    """For every scheme: a valid key of the right kind that is not the one used."""
    return {
        "aes256": DecryptionKeys(keys=("other",)),
        "rsa2048": DecryptionKeys(identity=str(key_dir.private_path("r2", "rsa"))),
        "fernet": DecryptionKeys(keys=("f2",)),
        "age": DecryptionKeys(keys=("g2",)),
    }


def write_private_copy(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path
