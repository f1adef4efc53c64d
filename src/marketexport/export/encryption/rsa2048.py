"""``rsa2048``: the aes256 payload under a random per-file key, wrapped for each recipient.

The 32-byte file key is wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256) for every recipient
public key, and each wrapped copy is listed under the SHA-256 fingerprint of the recipient's
SubjectPublicKeyInfo. Exporting needs public keys only; keys under 2048 bits are refused.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ...errors import ConfigError, EncryptionError
from .base import ByteStage, DecryptionKeys, EncryptionSpec, Scheme
from .chunked import ChunkedDecryptor, ChunkedEncryptor
from .container import PreambleStage, build_preamble
from .keys import KeyRing, read_private

MIN_BITS = 2048
LABEL = b"marketexport rsa2048 file key v1"


def fingerprint(public: rsa.RSAPublicKey) -> str:
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _oaep(label: bytes | None) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def wrap_key(public: rsa.RSAPublicKey, file_key: bytes, label: bytes | None = LABEL) -> bytes:
    return public.encrypt(file_key, _oaep(label))


def unwrap_key(private: rsa.RSAPrivateKey, wrapped: bytes, label: bytes | None = LABEL) -> bytes:
    """RSA-OAEP-SHA256 decryption; any failure is one EncryptionError, saying nothing more."""
    try:
        return private.decrypt(wrapped, _oaep(label))
    except ValueError:
        raise EncryptionError("the wrapped file key does not open with this identity") from None


def load_public(path: Path) -> rsa.RSAPublicKey:
    """An RSA public key (PEM, or the public half of a PEM private key is refused)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"recipient key {path} does not exist", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"recipient key {path} cannot be read: {exc.strerror}") from None
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(
            f"recipient {path} is not a PEM public key (give the .pub.pem file; exporting "
            "never needs a private key)",
            path=str(path),
        ) from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise ConfigError(f"recipient {path} is not an RSA key", path=str(path))
    if public.key_size < MIN_BITS:
        raise ConfigError(
            f"recipient {path} is a {public.key_size}-bit RSA key; at least {MIN_BITS} bits "
            "are required",
            path=str(path),
            bits=public.key_size,
        )
    return public


def load_private(path: Path) -> rsa.RSAPrivateKey:
    """An RSA identity file (PEM, unencrypted, mode 0600)."""
    return _parse_private(read_private(path), str(path))


@functools.lru_cache(maxsize=16)
def _parse_private(data: bytes, where: str) -> rsa.RSAPrivateKey:
    # Parsing checks the key's consistency, which costs about 0.2 s for 2048 bits; a process
    # that opens many files with one identity parses it once.
    path = where
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"identity {path} is not an unencrypted PEM private key", path=str(path)
        ) from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ConfigError(f"identity {path} is not an RSA private key", path=str(path))
    return private


def check(spec: EncryptionSpec) -> None:
    if not spec.recipients or spec.key or spec.key_file or spec.passphrase_env:
        raise ConfigError(
            "--encrypt rsa2048 needs one or more --recipient PUBLIC_KEY.pem and no --key, "
            "--key-file or --passphrase-env",
            scheme=spec.scheme,
        )
    for recipient in spec.recipients:
        load_public(Path(recipient))


def encryptor(spec: EncryptionSpec, keys: KeyRing, content: dict[str, Any]) -> PreambleStage:
    check(spec)
    file_key = os.urandom(32)
    wrapped = []
    for recipient in spec.recipients:
        public = load_public(Path(recipient))
        entry = {"fingerprint": fingerprint(public), "bits": public.key_size}
        entry["wrapped"] = base64.b64encode(wrap_key(public, file_key)).decode()
        wrapped.append(entry)
    header = {
        "scheme": "rsa2048",
        "payload": "c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM",
        "key": {"type": "rsa-oaep-sha256", "recipients": wrapped},
        "content": content,
    }
    preamble = build_preamble(header)
    description = {
        "scheme": "rsa2048",
        "container": 1,
        "payload": header["payload"],
        "recipients": [{"fingerprint": e["fingerprint"], "bits": e["bits"]} for e in wrapped],
    }
    return PreambleStage(preamble, ChunkedEncryptor(file_key, preamble), description)


def _identities(offered: DecryptionKeys, keys: KeyRing) -> list[rsa.RSAPrivateKey]:
    found = []
    if offered.identity:
        found.append(load_private(Path(offered.identity)))
    for name in offered.keys:
        if keys.directory.kind_of(name) != "rsa":
            raise ConfigError(f"key {name!r} is not an rsa key", key=name)
        found.append(load_private(keys.directory.private_path(name, "rsa")))
    return found


def decryptor(
    header: dict[str, Any], preamble: bytes, offered: DecryptionKeys, keys: KeyRing
) -> ByteStage:
    entries = {e["fingerprint"]: e for e in header.get("key", {}).get("recipients", [])}
    identities = _identities(offered, keys)
    if not identities:
        raise EncryptionError(
            "this file is encrypted for RSA recipients "
            f"{', '.join(entries) or 'none'}: give --identity PRIVATE_KEY.pem or --key NAME"
        )
    for private in identities:
        entry = entries.get(fingerprint(private.public_key()))
        if entry is not None:
            file_key = unwrap_key(private, base64.b64decode(entry["wrapped"]))
            return ChunkedDecryptor(file_key, preamble)
    given = ", ".join(fingerprint(p.public_key()) for p in identities)
    raise EncryptionError(
        f"wrong identity: the file is for {', '.join(entries)}, the identity given is {given}; "
        "nothing was decrypted"
    )


RSA2048 = Scheme(
    name="rsa2048",
    extension=".mxe",
    summary="aes256 payload, per-file key wrapped with RSA-OAEP-SHA256 for each recipient",
    check=check,
    encryptor=encryptor,
    decryptor=decryptor,
)
