"""Ed25519 signatures in minisign's format, so that ``minisign -Vm FILE -p KEY.pub`` checks
them with no marketexport installed.

- public key file: an untrusted comment line, then base64 of ``"Ed" || key id (8) ||
  public key (32)``;
- secret key file: an untrusted comment line, then base64 of ``"Ed" || kdf "\\0\\0" ||
  "B2" || salt (32) || opslimit (8) || memlimit (8) || key id (8) || secret key (64) ||
  BLAKE2b-256 checksum (32)`` (the unencrypted form, as ``minisign -G -W`` writes; the key
  directory's 0600 files protect it);
- signature file ``FILE.minisig``: an untrusted comment, base64 of ``"ED" || key id ||
  Ed25519(BLAKE2b-512(file))``, a trusted comment, and base64 of the Ed25519 signature of
  the first signature followed by the trusted comment text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ...errors import ConfigError, ManifestError
from .keys import KeyRing, Secret

SIGNATURE_SUFFIX = ".minisig"
_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class PublicKey:
    """A minisign public key: its 8-byte id and Ed25519 key."""

    key_id: bytes
    key: bytes

    @property
    def fingerprint(self) -> str:
        """The key id as minisign prints it (little-endian, upper-case hex)."""
        return self.key_id[::-1].hex().upper()

    def to_text(self) -> str:
        body = base64.b64encode(b"Ed" + self.key_id + self.key).decode()
        return f"untrusted comment: minisign public key {self.fingerprint}\n{body}\n"


class SigningKey:
    """A minisign secret key; its seed stays inside a Secret."""

    def __init__(self, key_id: bytes, seed: Secret) -> None:
        self.key_id = key_id
        self._seed = seed

    def __repr__(self) -> str:
        return f"SigningKey({self.public.fingerprint})"

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._seed.reveal())

    @property
    def public(self) -> PublicKey:
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey(self.key_id, raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(8), Secret(os.urandom(32)))

    def to_text(self) -> str:
        """The unencrypted minisign secret key file."""
        secret = self._seed.reveal() + self.public.key
        checksum = hashlib.blake2b(b"Ed" + self.key_id + secret, digest_size=32).digest()
        body = b"Ed" + b"\x00\x00" + b"B2" + bytes(32) + bytes(16) + self.key_id + secret
        body += checksum
        return (
            "untrusted comment: minisign secret key (unencrypted, from marketexport)\n"
            + base64.b64encode(body).decode()
            + "\n"
        )

    @classmethod
    def from_text(cls, text: str, where: str) -> SigningKey:
        raw = _decode_second_line(text, where)
        if len(raw) != 158 or raw[:2] != b"Ed" or raw[4:6] != b"B2":
            raise ManifestError(f"{where} is not a minisign secret key", path=where)
        if raw[2:4] != b"\x00\x00":
            raise ManifestError(
                f"{where} is a password-protected minisign key; marketexport uses unencrypted "
                "keys kept 0600 in its key directory",
                path=where,
            )
        key_id, secret, checksum = raw[54:62], raw[62:126], raw[126:158]
        expected = hashlib.blake2b(b"Ed" + key_id + secret, digest_size=32).digest()
        if not hmac.compare_digest(checksum, expected):
            raise ManifestError(f"{where}: secret key checksum does not match", path=where)
        return cls(key_id, Secret(secret[:32]))

    def sign(self, data_digest: bytes, trusted_comment: str) -> str:
        """The text of a .minisig file for a file whose BLAKE2b-512 is ``data_digest``."""
        private = self._private
        signature = private.sign(data_digest)
        global_signature = private.sign(signature + trusted_comment.encode())
        return (
            "untrusted comment: signature from marketexport (minisign format)\n"
            + base64.b64encode(b"ED" + self.key_id + signature).decode()
            + "\n"
            + f"trusted comment: {trusted_comment}\n"
            + base64.b64encode(global_signature).decode()
            + "\n"
        )


def _decode_second_line(text: str, where: str) -> bytes:
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].startswith("untrusted comment:"):
        raise ManifestError(f"{where} is not in minisign format", path=where)
    try:
        return base64.b64decode(lines[1].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ManifestError(f"{where} is not in minisign format (bad base64)", path=where) from None


def read_public_key(path: Path) -> PublicKey:
    """A minisign public key file (or its base64 line alone)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"public key {path} cannot be read: {exc.strerror}") from None
    if not text.startswith("untrusted comment:"):
        text = "untrusted comment:\n" + text
    raw = _decode_second_line(text, str(path))
    if len(raw) != 42 or raw[:2] != b"Ed":
        raise ManifestError(f"{path} is not a minisign Ed25519 public key", path=str(path))
    return PublicKey(raw[2:10], raw[10:42])


def file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=64)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_READ_BYTES), b""):
            digest.update(chunk)
    return digest.digest()


def sign_file(path: Path, key: SigningKey) -> Path:
    """Write ``path.minisig`` beside ``path`` (atomically) and return its path."""
    from ..sink import write_atomic

    stamp = int(datetime.now(UTC).timestamp())
    comment = f"timestamp:{stamp}\tfile:{path.name}\thashed"
    signature_path = path.with_name(path.name + SIGNATURE_SUFFIX)
    write_atomic(signature_path, key.sign(file_digest(path), comment).encode())
    return signature_path


def verify_file(path: Path, public: PublicKey, signature_path: Path | None = None) -> str:
    """Check ``path`` against its .minisig; return the trusted comment or raise."""
    signature_path = signature_path or path.with_name(path.name + SIGNATURE_SUFFIX)
    try:
        lines = signature_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ManifestError(f"no signature {signature_path}", path=str(signature_path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"signature {signature_path} cannot be read: {exc}") from None
    if len(lines) < 4 or not lines[2].startswith("trusted comment: "):
        raise ManifestError(f"{signature_path} is not a minisign signature")
    try:
        raw = base64.b64decode(lines[1], validate=True)
        global_signature = base64.b64decode(lines[3], validate=True)
    except (binascii.Error, ValueError):
        raise ManifestError(f"{signature_path} is not a minisign signature (bad base64)") from None
    if len(raw) != 74 or raw[:2] not in (b"ED", b"Ed"):
        raise ManifestError(f"{signature_path} is not an Ed25519 minisign signature")
    if raw[2:10] != public.key_id:
        raise ManifestError(
            f"{signature_path} was made by key {raw[2:10][::-1].hex().upper()}, not by "
            f"{public.fingerprint}"
        )
    message = file_digest(path) if raw[:2] == b"ED" else path.read_bytes()
    comment = lines[2][len("trusted comment: ") :]
    verifier = Ed25519PublicKey.from_public_bytes(public.key)
    try:
        verifier.verify(raw[10:], message)
        verifier.verify(global_signature, raw[10:] + comment.encode())
    except InvalidSignature:
        raise ManifestError(
            f"signature {signature_path} does not match {path.name} (changed file or signature)",
            path=str(path),
        ) from None
    return comment


class ExportSigner:
    """Signs an export's manifest and SHA256SUMS with one key from the key directory."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self.fingerprint = key.public.fingerprint

    def __repr__(self) -> str:
        return f"ExportSigner({self.fingerprint})"

    def __call__(self, path: Path) -> Path:
        return sign_file(path, self._key)


def load_signer(name: str | None, keys: KeyRing | None) -> ExportSigner | None:
    """The signer for key ``name``, read (never created) before the export starts."""
    if not name:
        return None
    if keys is None:
        raise ConfigError("a signed export needs keys=KeyRing.from_settings(settings)")
    kind = keys.directory.kind_of(name)
    if kind != "signing":
        raise ConfigError(f"key {name!r} is a {kind} key, not a signing key", key=name)
    path = keys.directory.private_path(name, kind)
    text = keys.directory.private_bytes(name, kind).decode("utf-8", "replace")
    return ExportSigner(SigningKey.from_text(text, str(path)))
