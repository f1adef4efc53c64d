"""age v1 keys, recipient stanzas and header pieces (age-encryption.org/v1), written from
the specification on top of ``cryptography``.

Recipient types: X25519 (``age1...`` recipients, ``AGE-SECRET-KEY-1...`` identities) and
scrypt (a passphrase). Each stanza wraps the 16-byte file key; the header ends with an HMAC
keyed from the file key. The payload stages live in ``age.py``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ...errors import ConfigError, EncryptionError
from . import bech32
from .keys import Secret

VERSION_LINE = b"age-encryption.org/v1\n"
FILE_KEY_BYTES = 16
CHUNK_BYTES = 64 * 1024
TAG_BYTES = 16
SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES
NONCE_BYTES = 16
MAX_HEADER_BYTES = 1 << 20
SCRYPT_WORK_FACTOR = 18  # age's own default: about a second and 256 MiB
MAX_SCRYPT_WORK_FACTOR = 22
_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """Decode canonical unpadded base64, refusing padding and non-canonical forms."""
    if "=" in text or "\n" in text:
        raise EncryptionError("age header: padded or malformed base64")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionError("age header: malformed base64") from None
    if _b64(data) != text:
        raise EncryptionError("age header: non-canonical base64")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt or None, info).derive(ikm)


def _seal_file_key(wrap_key: bytes, file_key: bytes) -> bytes:
    return ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)


def _open_file_key(wrap_key: bytes, body: bytes) -> bytes | None:
    if len(body) != FILE_KEY_BYTES + TAG_BYTES:
        raise EncryptionError("age header: a wrapped file key must be 32 bytes")
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(bytes(12), body, None)
    except InvalidTag:
        return None


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of an age header: its arguments and body."""

    args: tuple[str, ...]
    body: bytes

    def encode(self) -> bytes:
        text = _b64(self.body)
        lines = [text[i : i + 64] for i in range(0, len(text), 64)]
        if not lines or len(lines[-1]) == 64:
            lines.append("")
        return ("-> " + " ".join(self.args) + "\n" + "\n".join(lines) + "\n").encode()


class X25519Recipient:
    """An ``age1...`` recipient."""

    def __init__(self, public: bytes) -> None:
        self.public = public

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        try:
            hrp, data = bech32.decode(text.strip())
        except EncryptionError as exc:
            hrp, data = f"invalid ({exc})", b""
        if hrp != RECIPIENT_HRP or len(data) != 32:
            raise ConfigError(
                f"not an age X25519 recipient: {text.strip()[:80]!r} (expected age1... as "
                "age-keygen prints it)",
                recipient=text.strip()[:80],
            )
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self.public)

    def wrap(self, file_key: bytes) -> Stanza:
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public))
        wrap_key = _hkdf(shared, share + self.public, _X25519_INFO)
        return Stanza(("X25519", _b64(share)), _seal_file_key(wrap_key, file_key))


class X25519Identity:
    """An ``AGE-SECRET-KEY-1...`` identity; the scalar stays inside a Secret."""

    def __init__(self, scalar: Secret) -> None:
        self._scalar = scalar

    def __repr__(self) -> str:
        return f"X25519Identity({self.recipient})"

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(Secret(os.urandom(32)))

    @classmethod
    def parse_file(cls, text: str, where: str) -> list[X25519Identity]:
        found = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                hrp, data = bech32.decode(line)
            except EncryptionError:
                raise ConfigError(f"{where} holds a line that is not an age identity") from None
            if hrp != IDENTITY_HRP or len(data) != 32:
                raise ConfigError(f"{where} holds a line that is not an age X25519 identity")
            found.append(cls(Secret(data)))
        if not found:
            raise ConfigError(f"{where} holds no age identity")
        return found

    def to_text(self) -> str:
        return bech32.encode(IDENTITY_HRP, self._scalar.reveal()).upper()

    @property
    def recipient(self) -> X25519Recipient:
        private = X25519PrivateKey.from_private_bytes(self._scalar.reveal())
        return X25519Recipient(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        private = X25519PrivateKey.from_private_bytes(self._scalar.reveal())
        public = self.recipient.public
        for stanza in stanzas:
            if stanza.args[0] != "X25519":
                continue
            if len(stanza.args) != 2:
                raise EncryptionError("age header: an X25519 stanza has two arguments")
            share = _unb64(stanza.args[1])
            if len(share) != 32:
                raise EncryptionError("age header: an X25519 share is 32 bytes")
            shared = private.exchange(X25519PublicKey.from_public_bytes(share))
            if shared == bytes(32):
                raise EncryptionError("age header: X25519 share gives an all-zero secret")
            file_key = _open_file_key(_hkdf(shared, share + public, _X25519_INFO), stanza.body)
            if file_key is not None:
                return file_key
        return None


class ScryptRecipient:
    """A passphrase, stretched with scrypt (age's own parameters) and a per-file salt."""

    def __init__(self, passphrase: Secret, work_factor: int = SCRYPT_WORK_FACTOR) -> None:
        self._passphrase = passphrase
        self.work_factor = work_factor

    def __repr__(self) -> str:
        return "ScryptRecipient(***)"

    def _wrap_key(self, salt: bytes, work_factor: int) -> bytes:
        kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
        return kdf.derive(self._passphrase.reveal())

    def wrap(self, file_key: bytes) -> Stanza:
        salt = os.urandom(16)
        body = _seal_file_key(self._wrap_key(salt, self.work_factor), file_key)
        return Stanza(("scrypt", _b64(salt), str(self.work_factor)), body)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        ours = [s for s in stanzas if s.args[0] == "scrypt"]
        if not ours:
            return None
        if len(stanzas) != 1:
            raise EncryptionError("age header: a scrypt stanza must be the only stanza")
        args = ours[0].args
        if len(args) != 3 or not args[2].isdigit() or args[2].startswith("0"):
            raise EncryptionError("age header: malformed scrypt stanza")
        salt, work_factor = _unb64(args[1]), int(args[2])
        if len(salt) != 16:
            raise EncryptionError("age header: a scrypt salt is 16 bytes")
        if work_factor > MAX_SCRYPT_WORK_FACTOR:
            raise EncryptionError(
                f"age header: scrypt work factor {work_factor} exceeds the limit "
                f"{MAX_SCRYPT_WORK_FACTOR}"
            )
        return _open_file_key(self._wrap_key(salt, work_factor), ours[0].body)


Recipient = X25519Recipient | ScryptRecipient
Identity = X25519Identity | ScryptRecipient


def header_mac(file_key: bytes, header_up_to_dashes: bytes) -> bytes:
    mac_key = _hkdf(file_key, b"", b"header")
    return hmac.new(mac_key, header_up_to_dashes, "sha256").digest()


def _payload_nonce(index: int, last: bool) -> bytes:
    if index >= 1 << 88:
        raise EncryptionError("age payload: chunk counter overflow")
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
