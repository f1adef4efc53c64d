"""Published test vectors: C2SP chunked encryption (AES-256-GCM) and RSA-OAEP-SHA256."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from marketexport.errors import EncryptionError
from marketexport.export.encryption.chunked import (
    HEADER_BYTES,
    SALT_BYTES,
    ChunkedDecryptor,
    ChunkedEncryptor,
)
from marketexport.export.encryption.rsa2048 import unwrap_key, wrap_key
from tests.conftest import VECTORS

CHUNKED = VECTORS / "c2sp_chunked_encryption_aes_256_gcm_test.json"
OAEP = VECTORS / "rsa_oaep_2048_sha256_mgf1sha256_test.json"


def _load(path: Any) -> dict[str, Any]:
    if not path.exists():
        pytest.skip(f"test vectors {path} not found (set MARKETEXPORT_SHARED)")
    return json.loads(path.read_text())


def _chunked_cases() -> list[dict[str, Any]]:
    if not CHUNKED.exists():
        return []
    data = json.loads(CHUNKED.read_text())
    return [case for group in data["testGroups"] for case in group["tests"]]


def _decrypt(case: dict[str, Any], piece_bytes: int) -> tuple[bytes, list[bytes]]:
    """Feed the ciphertext in pieces; return the plaintext and what each call released."""
    ciphertext = zlib.decompress(bytes.fromhex(case["ct"]))
    decryptor = ChunkedDecryptor(bytes.fromhex(case["key"]), bytes.fromhex(case["ctx"]))
    released: list[bytes] = []
    for i in range(0, len(ciphertext), piece_bytes):
        released.append(decryptor.write(ciphertext[i : i + piece_bytes]))
    released.append(decryptor.flush())
    return b"".join(released), released


def test_vector_file_has_all_cases() -> None:
    data = _load(CHUNKED)

    assert data["algorithm"] == "Cobblestone-256"
    assert len(_chunked_cases()) == data["numberOfTests"] == 35


@pytest.mark.parametrize("case", _chunked_cases(), ids=lambda c: f"tc{c['tcId']}")
@pytest.mark.parametrize("piece_bytes", [1000, 16_400, 1 << 20])
def test_chunked_vector(case: dict[str, Any], piece_bytes: int) -> None:
    if case["result"] == "valid":
        plaintext, _ = _decrypt(case, piece_bytes)

        assert len(plaintext) == case["msgLength"]
        assert hashlib.sha512(plaintext).hexdigest() == case["msgSha512"]
    else:
        with pytest.raises(EncryptionError):
            _decrypt(case, piece_bytes)


@pytest.mark.parametrize(
    "case",
    [c for c in _chunked_cases() if "PartialPlaintext" in c["flags"]],
    ids=lambda c: f"tc{c['tcId']}",
)
def test_partial_vectors_release_at_most_the_valid_prefix(case: dict[str, Any]) -> None:
    ciphertext = zlib.decompress(bytes.fromhex(case["ct"]))
    decryptor = ChunkedDecryptor(bytes.fromhex(case["key"]), bytes.fromhex(case["ctx"]))
    released = b""

    with pytest.raises(EncryptionError):
        released += decryptor.write(ciphertext)
        released += decryptor.flush()
    with pytest.raises(EncryptionError):
        decryptor.flush()

    # Only whole authenticated chunks come out, and never past the valid prefix.
    assert len(released) <= case["msgLength"]
    assert len(released) % 16_384 == 0
    if len(released) == case["msgLength"]:
        assert hashlib.sha512(released).hexdigest() == case["msgSha512"]


@pytest.mark.parametrize(
    "case",
    [c for c in _chunked_cases() if "HeaderFailure" in c["flags"]],
    ids=lambda c: f"tc{c['tcId']}",
)
def test_header_failures_release_nothing(case: dict[str, Any]) -> None:
    ciphertext = zlib.decompress(bytes.fromhex(case["ct"]))
    released = b""

    with pytest.raises(EncryptionError):
        decryptor = ChunkedDecryptor(bytes.fromhex(case["key"]), bytes.fromhex(case["ctx"]))
        released += decryptor.write(ciphertext[:HEADER_BYTES])
        released += decryptor.write(ciphertext[HEADER_BYTES:])
        released += decryptor.flush()

    assert released == b""


@pytest.mark.parametrize(
    "case",
    [c for c in _chunked_cases() if c["result"] == "valid"],
    ids=lambda c: f"tc{c['tcId']}",
)
def test_encryption_with_the_vector_salt_reproduces_the_ciphertext(case: dict[str, Any]) -> None:
    ciphertext = zlib.decompress(bytes.fromhex(case["ct"]))
    plaintext, _ = _decrypt(case, 1 << 20)
    key, context = bytes.fromhex(case["key"]), bytes.fromhex(case["ctx"])

    encryptor = ChunkedEncryptor(key, context, salt=ciphertext[:SALT_BYTES])
    again = b"".join(
        encryptor.write(plaintext[i : i + 5000]) for i in range(0, len(plaintext), 5000)
    )
    again += encryptor.flush()

    assert again == ciphertext


def _oaep_cases() -> list[tuple[str, dict[str, Any]]]:
    if not OAEP.exists():
        return []
    data = json.loads(OAEP.read_text())
    return [(g["privateKeyPem"], case) for g in data["testGroups"] for case in g["tests"]]


@pytest.mark.parametrize("pem_case", _oaep_cases(), ids=lambda pc: f"tc{pc[1]['tcId']}")
def test_rsa_oaep_vector(pem_case: tuple[str, dict[str, Any]]) -> None:
    pem, case = pem_case
    private = load_pem_private_key(pem.encode(), password=None)
    label = bytes.fromhex(case["label"])
    ciphertext = bytes.fromhex(case["ct"])

    if case["result"] in ("valid", "acceptable"):
        assert unwrap_key(private, ciphertext, label) == bytes.fromhex(case["msg"])  # type: ignore[arg-type]
    else:
        with pytest.raises(EncryptionError):
            unwrap_key(private, ciphertext, label)  # type: ignore[arg-type]


def test_rsa_oaep_round_trip_with_the_vector_key() -> None:
    pem, _ = _oaep_cases()[0]
    private = load_pem_private_key(pem.encode(), password=None)
    file_key = base64.b64decode(base64.b64encode(bytes(range(32))))

    wrapped = wrap_key(private.public_key(), file_key)  # type: ignore[arg-type]

    assert unwrap_key(private, wrapped) == file_key  # type: ignore[arg-type]
