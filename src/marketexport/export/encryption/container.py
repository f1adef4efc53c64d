"""marketexport's encrypted container: a small versioned header, then the scheme's payload.

Layout, byte by byte::

    0..7    magic  89 4D 58 45 4E 43 0D 0A   ("\\x89MXENC\\r\\n": a non-text byte first,
                                             CR LF to reveal newline-mangling transfers)
    8       container version (1)
    9..12   header length N, unsigned 32-bit big-endian (at most 1 MiB)
    13..    header: N bytes of UTF-8 JSON, keys sorted, no spaces; it names the scheme, the
            key (id, or salt and KDF parameters, or wrapped keys per recipient fingerprint)
            and the content's format and compression
    13+N..  payload, as the scheme defines it

The preamble (bytes 0..13+N) is bound to the payload: AES-256 and RSA schemes pass it whole
as the chunked-encryption *context*, which enters the key derivation and the key commitment,
so a changed header fails before any chunk is opened; Fernet puts its SHA-256 in every token.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from ...errors import EncryptionError

MAGIC = b"\x89MXENC\r\n"
VERSION = 1
FIXED_BYTES = len(MAGIC) + 1 + 4
MAX_HEADER_BYTES = 1 << 20


def build_preamble(header: dict[str, Any]) -> bytes:
    """Magic, version, length and the canonical JSON header."""
    body = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    if len(body) > MAX_HEADER_BYTES:
        raise EncryptionError(f"container header of {len(body)} bytes exceeds 1 MiB")
    return MAGIC + bytes([VERSION]) + struct.pack(">I", len(body)) + body


def is_container(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC[: len(head)] and len(head) > 0


def parse_preamble(data: bytes | bytearray) -> tuple[dict[str, Any], int] | None:
    """(header, preamble length) once ``data`` holds the whole preamble, else None."""
    if len(data) < FIXED_BYTES:
        return None
    if bytes(data[: len(MAGIC)]) != MAGIC:
        raise EncryptionError("not a marketexport encrypted file (bad magic)")
    if data[len(MAGIC)] != VERSION:
        raise EncryptionError(
            f"unsupported container version {data[len(MAGIC)]} (this marketexport reads "
            f"version {VERSION})"
        )
    (length,) = struct.unpack(">I", bytes(data[len(MAGIC) + 1 : FIXED_BYTES]))
    if length > MAX_HEADER_BYTES:
        raise EncryptionError(f"container header length {length} exceeds 1 MiB; damaged file")
    if len(data) < FIXED_BYTES + length:
        return None
    try:
        header = json.loads(bytes(data[FIXED_BYTES : FIXED_BYTES + length]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EncryptionError("container header is not valid JSON; damaged file") from None
    if not isinstance(header, dict) or not isinstance(header.get("scheme"), str):
        raise EncryptionError("container header names no scheme; damaged file")
    return header, FIXED_BYTES + length


class PreambleStage:
    """Wraps a payload encryptor: emits the preamble before the payload's first bytes."""

    def __init__(self, preamble: bytes, inner: Any, description: dict[str, Any]) -> None:
        self._pending = preamble
        self._inner = inner
        self._description = description

    def _take(self) -> bytes:
        head, self._pending = self._pending, b""
        return head

    def write(self, chunk: bytes) -> bytes:
        out: bytes = self._inner.write(chunk)
        return self._take() + out if self._pending else out

    def flush(self) -> bytes:
        tail: bytes = self._inner.flush()
        return self._take() + tail

    def close(self) -> None:
        self._inner.close()

    def describe(self) -> dict[str, Any]:
        return dict(self._description)
