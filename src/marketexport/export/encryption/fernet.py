"""``fernet``: a framed sequence of Fernet tokens over bounded chunks, in the container.

Fernet is AES-128-CBC with HMAC-SHA256 (not AES-256), and a token must be whole in memory,
so the payload is cut into chunks of at most 512 KiB. Each frame is a 4-byte big-endian
length and a Fernet token whose plaintext is::

    chunk index (8 bytes, big-endian) || final flag (1 byte, 0 or 1)
    || SHA-256 of the container preamble (32 bytes) || chunk data

The index catches dropped, repeated and reordered chunks, the final flag a cut-off end, the
preamble digest a header swapped from another file; bytes after the final frame are refused.
A key file holds one Fernet key per line: the first encrypts, all decrypt (rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ...errors import ConfigError, EncryptionError, KeyFileError
from .base import ByteStage, DecryptionKeys, EncryptionSpec, Scheme
from .container import PreambleStage, build_preamble
from .keys import KeyRing, Secret, check_name, key_id, read_private

CHUNK_BYTES = 512 * 1024
PREFIX = struct.Struct(">QB32s")
# A token of a full chunk is about 4/3 of it plus Fernet's overhead; anything longer is damage.
MAX_TOKEN_BYTES = (CHUNK_BYTES + PREFIX.size + 100) * 4 // 3 + 100


def parse_fernet_keys(data: bytes, where: str) -> list[Secret]:
    """Fernet keys, one per line (urlsafe base64 of 32 bytes); the first is the primary."""
    found = []
    for line in data.decode("ascii", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            raw = base64.urlsafe_b64decode(line.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise KeyFileError(
                f"{where} holds a line that is not a Fernet key (expected urlsafe base64 of "
                f"32 bytes, found {len(raw)} bytes)",
                path=where,
            )
        found.append(Secret(line.encode()))
    if not found:
        raise KeyFileError(f"{where} holds no Fernet key", path=where)
    return found


def fernet_id(key: Secret) -> str:
    return key_id(base64.urlsafe_b64decode(key.reveal()))


def _named(keys: KeyRing, name: str) -> list[Secret]:
    kind = keys.directory.kind_of(name)
    if kind != "fernet":
        raise ConfigError(f"key {name!r} is a {kind} key, not a fernet key", key=name)
    path = keys.directory.private_path(name, "fernet")
    return parse_fernet_keys(read_private(path), str(path))


def check(spec: EncryptionSpec) -> None:
    if bool(spec.key) == bool(spec.key_file) or spec.passphrase_env or spec.recipients:
        raise ConfigError(
            "--encrypt fernet needs exactly one of --key NAME or --key-file FILE (Fernet has no "
            "passphrase or recipient form)",
            scheme=spec.scheme,
        )
    if spec.key:
        check_name(spec.key)


class FernetEncryptor:
    """Byte stage: plaintext in, framed Fernet tokens out."""

    def __init__(self, key: Secret, preamble: bytes) -> None:
        self._fernet = Fernet(key.reveal())
        self._digest = hashlib.sha256(preamble).digest()
        self._buffer = bytearray()
        self._index = 0
        self._finished = False

    def _frame(self, data: bytes | bytearray, final: bool) -> bytes:
        plain = PREFIX.pack(self._index, int(final), self._digest) + data
        token = self._fernet.encrypt(plain)
        self._index += 1
        return struct.pack(">I", len(token)) + token

    def write(self, chunk: bytes) -> bytes:
        if self._finished:
            raise EncryptionError("write after the end of the encrypted stream")
        self._buffer += chunk
        out = []
        while len(self._buffer) >= CHUNK_BYTES:
            out.append(self._frame(self._buffer[:CHUNK_BYTES], final=False))
            del self._buffer[:CHUNK_BYTES]
        return b"".join(out)

    def flush(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        final = self._frame(bytes(self._buffer), final=True)
        self._buffer.clear()
        return final

    def close(self) -> None:
        self._buffer.clear()


class FernetDecryptor:
    """Byte stage: frames in, plaintext out after each token authenticates."""

    def __init__(self, keys: list[Secret], preamble: bytes) -> None:
        self._fernet = MultiFernet([Fernet(key.reveal()) for key in keys])
        self._digest = hashlib.sha256(preamble).digest()
        self._buffer = bytearray()
        self._index = 0
        self._finished = False
        self._failed: EncryptionError | None = None

    def _fail(self, message: str) -> EncryptionError:
        self._failed = EncryptionError(message, chunk=self._index)
        self._buffer = bytearray()
        return self._failed

    def _open(self, token: bytes) -> bytes:
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            what = "wrong key, or a changed" if self._index == 0 else "a changed"
            raise self._fail(f"Fernet token {self._index} does not open ({what} frame)") from None
        if len(plain) < PREFIX.size:
            raise self._fail(f"Fernet token {self._index} is too short")
        index, final, digest = PREFIX.unpack_from(plain)
        if digest != self._digest:
            raise self._fail("a Fernet frame belongs to another file's header")
        if index != self._index:
            raise self._fail(
                f"Fernet frame {self._index} carries index {index} (dropped, repeated or "
                "reordered chunk)"
            )
        self._index += 1
        self._finished = bool(final)
        return plain[PREFIX.size :]

    def write(self, chunk: bytes) -> bytes:
        if self._failed is not None:
            raise self._failed
        self._buffer += chunk
        out = []
        while len(self._buffer) >= 4:
            if self._finished:
                raise self._fail("data after the final Fernet frame")
            (length,) = struct.unpack(">I", bytes(self._buffer[:4]))
            if length > MAX_TOKEN_BYTES:
                raise self._fail(f"Fernet frame {self._index} claims {length} bytes; damaged")
            if len(self._buffer) < 4 + length:
                break
            token = bytes(self._buffer[4 : 4 + length])
            del self._buffer[: 4 + length]
            out.append(self._open(token))
        return b"".join(out)

    def flush(self) -> bytes:
        if self._failed is not None:
            raise self._failed
        if self._buffer:
            raise self._fail("the Fernet stream ends inside a frame (cut off)")
        if not self._finished:
            raise self._fail("the Fernet stream is cut off (no final frame)")
        return b""

    def close(self) -> None:
        self._buffer.clear()


def encryptor(spec: EncryptionSpec, keys: KeyRing, content: dict[str, Any]) -> PreambleStage:
    check(spec)
    if spec.key:
        ring = _named(keys, spec.key)
    else:
        path = Path(str(spec.key_file))
        ring = parse_fernet_keys(read_private(path), str(path))
    primary = ring[0]
    key_header: dict[str, Any] = {"type": "fernet", "id": fernet_id(primary)}
    if spec.key:
        key_header["name"] = spec.key
    header = {
        "scheme": "fernet",
        "payload": "fernet-frames-v1",
        "chunk_bytes": CHUNK_BYTES,
        "key": key_header,
        "content": content,
    }
    preamble = build_preamble(header)
    description = {"scheme": "fernet", "container": 1, "payload": "fernet-frames-v1"}
    description["key"] = dict(key_header)
    return PreambleStage(preamble, FernetEncryptor(primary, preamble), description)


def decryptor(
    header: dict[str, Any], preamble: bytes, offered: DecryptionKeys, keys: KeyRing
) -> ByteStage:
    ring: list[Secret] = []
    for name in offered.keys:
        ring.extend(_named(keys, name))
    if offered.key_file:
        path = Path(offered.key_file)
        ring.extend(parse_fernet_keys(read_private(path), str(path)))
    header_key = header.get("key") or {}
    if not ring and offered.is_empty and header_key.get("name"):
        ring = _named(keys, header_key["name"])
    if not ring:
        raise EncryptionError(
            f"this file was encrypted with Fernet key {header_key.get('id')}: give --key NAME "
            "or --key-file FILE"
        )
    if header_key.get("id") not in {fernet_id(k) for k in ring}:
        raise EncryptionError(
            f"wrong key: the file was encrypted with Fernet key {header_key.get('id')}, which "
            "is not among the keys given; nothing was decrypted"
        )
    return FernetDecryptor(ring, preamble)


FERNET = Scheme(
    name="fernet",
    extension=".mxe",
    summary="Fernet (AES-128-CBC + HMAC-SHA256) tokens over 512 KiB chunks, framed",
    check=check,
    encryptor=encryptor,
    decryptor=decryptor,
)
