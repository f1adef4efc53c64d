"""``age``: the interoperability profile. The file is a plain age v1 file, so a recipient
opens it with ``age --decrypt -i KEY.txt`` (or types the passphrase) and no marketexport.

The header and payload follow age-encryption.org/v1 (see ``agekeys.py``); the payload is
64 KiB ChaCha20-Poly1305 chunks whose nonce carries an 11-byte counter and a last-chunk flag,
so a changed, reordered, repeated or cut-off chunk fails to authenticate.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ...errors import ConfigError, EncryptionError
from .agekeys import (
    CHUNK_BYTES,
    FILE_KEY_BYTES,
    MAX_HEADER_BYTES,
    NONCE_BYTES,
    SEALED_CHUNK_BYTES,
    TAG_BYTES,
    VERSION_LINE,
    Identity,
    Recipient,
    ScryptRecipient,
    Stanza,
    X25519Identity,
    X25519Recipient,
    _b64,
    _hkdf,
    _payload_nonce,
    _unb64,
    header_mac,
)
from .base import DecryptionKeys, EncryptionSpec, Scheme
from .keys import KeyRing, check_env_name, check_name, read_private


def build_header(file_key: bytes, recipients: list[Recipient]) -> bytes:
    body = VERSION_LINE + b"".join(r.wrap(file_key).encode() for r in recipients) + b"---"
    return body + b" " + _b64(header_mac(file_key, body)).encode() + b"\n"


class AgeEncryptor:
    """Byte stage: plaintext in, an age v1 file out."""

    def __init__(self, recipients: list[Recipient], description: dict[str, Any]) -> None:
        file_key = os.urandom(FILE_KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        self._pending = build_header(file_key, recipients) + nonce
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._buffer = bytearray()
        self._index = 0
        self._finished = False
        self._description = description

    def _seal(self, data: bytes | bytearray, last: bool) -> bytes:
        sealed = self._aead.encrypt(_payload_nonce(self._index, last), bytes(data), None)
        self._index += 1
        return sealed

    def write(self, chunk: bytes) -> bytes:
        if self._finished:
            raise EncryptionError("write after the end of the encrypted stream")
        self._buffer += chunk
        out = [self._pending]
        self._pending = b""
        # A full chunk may still be the last one, so one is always held back until flush.
        while len(self._buffer) > CHUNK_BYTES:
            out.append(self._seal(self._buffer[:CHUNK_BYTES], last=False))
            del self._buffer[:CHUNK_BYTES]
        return b"".join(out)

    def flush(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        out = self._pending + self._seal(self._buffer, last=True)
        self._pending = b""
        self._buffer.clear()
        return out

    def close(self) -> None:
        self._buffer.clear()

    def describe(self) -> dict[str, Any]:
        return dict(self._description)


def parse_header(data: bytes | bytearray) -> tuple[list[Stanza], bytes, bytes, int] | None:
    """(stanzas, header up to '---', MAC, header length) once the header is whole, else None."""
    end = data.find(b"\n---")
    if end < 0:
        if len(data) > MAX_HEADER_BYTES:
            raise EncryptionError("age header is longer than 1 MiB; damaged file")
        return None
    line_end = data.find(b"\n", end + 1)
    if line_end < 0:
        return None
    text = bytes(data[: end + 1])
    mac_line = bytes(data[end + 1 : line_end])
    if not text.startswith(VERSION_LINE) or not mac_line.startswith(b"--- "):
        raise EncryptionError("not an age v1 file (bad version or MAC line)")
    stanzas = _parse_stanzas(text[len(VERSION_LINE) :].decode("ascii", "replace"))
    return stanzas, text + b"---", _unb64(mac_line[4:].decode("ascii", "replace")), line_end + 1


def _parse_stanzas(text: str) -> list[Stanza]:
    stanzas: list[Stanza] = []
    lines = text.split("\n")[:-1]
    i = 0
    while i < len(lines):
        if not lines[i].startswith("-> ") or len(lines[i].split(" ")) < 2:
            raise EncryptionError("age header: malformed stanza line")
        args = tuple(lines[i][3:].split(" "))
        body = ""
        i += 1
        while True:
            if i >= len(lines):
                raise EncryptionError("age header: stanza body is cut off")
            body += lines[i]
            i += 1
            if len(lines[i - 1]) < 64:
                break
        stanzas.append(Stanza(args, _unb64(body)))
    if not stanzas:
        raise EncryptionError("age header has no recipient stanza")
    return stanzas


class AgeDecryptor:
    """Byte stage: an age v1 file in, plaintext out, one authenticated chunk at a time."""

    def __init__(self, identities: list[Identity]) -> None:
        self._identities = identities
        self._aead: ChaCha20Poly1305 | None = None
        self._buffer = bytearray()
        self._index = 0
        self._failed: EncryptionError | None = None
        self._finished = False

    def _fail(self, message: str) -> EncryptionError:
        self._failed = EncryptionError(message, chunk=self._index)
        self._buffer = bytearray()
        return self._failed

    def _open_header(self) -> bool:
        parsed = parse_header(self._buffer)
        if parsed is None:
            return False
        stanzas, signed, mac, length = parsed
        if len(self._buffer) < length + NONCE_BYTES:
            return False
        file_key = None
        for identity in self._identities:
            file_key = identity.unwrap(stanzas)
            if file_key is not None:
                break
        if file_key is None:
            kinds = ", ".join(sorted({s.args[0] for s in stanzas}))
            raise self._fail(
                f"wrong identity or passphrase: no identity given opens this age file "
                f"(its stanzas: {kinds}); nothing was decrypted"
            )
        if not hmac.compare_digest(header_mac(file_key, signed), mac):
            raise self._fail("the age header MAC does not match (changed header)")
        nonce = bytes(self._buffer[length : length + NONCE_BYTES])
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        del self._buffer[: length + NONCE_BYTES]
        return True

    def _open(self, sealed: bytes, last: bool) -> bytes:
        assert self._aead is not None
        try:
            plain = self._aead.decrypt(_payload_nonce(self._index, last), sealed, None)
        except InvalidTag:
            raise self._fail(
                f"age chunk {self._index} does not authenticate (changed, reordered, repeated "
                "or cut-off data)"
            ) from None
        self._index += 1
        return plain

    def write(self, chunk: bytes) -> bytes:
        if self._failed is not None:
            raise self._failed
        if self._finished:
            raise self._fail("data after the end of the age payload")
        self._buffer += chunk
        if self._aead is None:
            try:
                if not self._open_header():
                    return b""
            except EncryptionError as exc:
                self._failed = exc
                raise
        out = []
        while len(self._buffer) > SEALED_CHUNK_BYTES:
            out.append(self._open(bytes(self._buffer[:SEALED_CHUNK_BYTES]), last=False))
            del self._buffer[:SEALED_CHUNK_BYTES]
        return b"".join(out)

    def flush(self) -> bytes:
        if self._failed is not None:
            raise self._failed
        if self._aead is None:
            raise self._fail("the age file is cut off inside its header")
        size = len(self._buffer)
        if size < TAG_BYTES or (size == TAG_BYTES and self._index > 0):
            raise self._fail("the age payload is cut off (no final chunk)")
        out = self._open(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._finished = True
        return out

    def close(self) -> None:
        self._buffer.clear()


def _recipients_from(text: str, where: str) -> list[X25519Recipient]:
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            found.append(X25519Recipient.parse(line))
    if not found:
        raise ConfigError(f"{where} holds no age recipient")
    return found


def resolve_recipients(spec: EncryptionSpec, keys: KeyRing | None) -> list[Recipient]:
    found: list[Recipient] = []
    for item in spec.recipients:
        if item.startswith("age1"):
            found.append(X25519Recipient.parse(item))
            continue
        path = Path(item)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"age recipient file {path} cannot be read: {exc}") from None
        found.extend(_recipients_from(text, str(path)))
    if spec.key and keys is not None:
        if keys.directory.kind_of(spec.key) != "age":
            raise ConfigError(f"key {spec.key!r} is not an age key", key=spec.key)
        public = keys.directory.public_path(spec.key, "age")
        assert public is not None
        found.extend(_recipients_from(public.read_text(encoding="utf-8"), str(public)))
    if spec.passphrase_env and keys is not None:
        found.append(ScryptRecipient(keys.passphrase(spec.passphrase_env)))
    return found


def check(spec: EncryptionSpec) -> None:
    if spec.key_file:
        raise ConfigError("--encrypt age takes --recipient, --key NAME or --passphrase-env")
    if spec.passphrase_env and (spec.recipients or spec.key):
        raise ConfigError("age allows a passphrase only alone (no --recipient or --key with it)")
    if not (spec.recipients or spec.key or spec.passphrase_env):
        raise ConfigError(
            "--encrypt age needs --recipient age1... (or a file of them), --key NAME of an age "
            "key, or --passphrase-env VAR"
        )
    if spec.key:
        check_name(spec.key)
    if spec.passphrase_env:
        check_env_name(spec.passphrase_env)
    resolve_recipients(spec, None)


def encryptor(spec: EncryptionSpec, keys: KeyRing, content: dict[str, Any]) -> AgeEncryptor:
    check(spec)
    recipients = resolve_recipients(spec, keys)
    description: dict[str, Any] = {"scheme": "age", "format": "age-encryption.org/v1"}
    description["recipients"] = [
        str(r) if isinstance(r, X25519Recipient) else "scrypt passphrase" for r in recipients
    ]
    return AgeEncryptor(recipients, description)


def identities_for(offered: DecryptionKeys, keys: KeyRing) -> list[Identity]:
    found: list[Identity] = []
    if offered.identity:
        path = Path(offered.identity)
        text = read_private(path).decode("utf-8", "replace")
        found.extend(X25519Identity.parse_file(text, str(path)))
    for name in offered.keys:
        if keys.directory.kind_of(name) != "age":
            raise ConfigError(f"key {name!r} is not an age key", key=name)
        text = keys.directory.private_bytes(name, "age").decode("utf-8", "replace")
        found.extend(X25519Identity.parse_file(text, name))
    if offered.passphrase_env:
        found.append(ScryptRecipient(keys.passphrase(offered.passphrase_env)))
    if not found:
        raise EncryptionError(
            "this is an age file: give --identity AGE_KEY_FILE, --key NAME of an age key, or "
            "--passphrase-env VAR"
        )
    return found


AGE = Scheme(
    name="age",
    extension=".age",
    summary="a standard age v1 file (X25519 recipients or scrypt passphrase): age -d opens it",
    check=check,
    encryptor=encryptor,
)
