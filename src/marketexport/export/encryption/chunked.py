"""The C2SP chunked-encryption construction (c2sp.org/chunked-encryption), AES-256-GCM.

An input key, a 24-byte random salt and a context are expanded with HKDF-Expand-SHA-512
into a one-message AEAD key, a base nonce and a 32-byte key commitment. The message is cut
into 16 KiB chunks, the last one always shorter (possibly empty), and chunk ``i`` is sealed
with the base nonce XOR ``i``. The ciphertext is ``salt || commitment || chunks``.

The short final chunk is the end-of-message mark, so a truncated, extended or reordered
ciphertext fails to authenticate. The decryptor releases a chunk's plaintext only after
that chunk has authenticated, and the caller learns that the message is complete only
when :meth:`ChunkedDecryptor.flush` returns.
"""

from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ...errors import EncryptionError

AEAD_NAME = b"AEAD_AES_256_GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SALT_BYTES = 24
COMMITMENT_BYTES = 32
HEADER_BYTES = SALT_BYTES + COMMITMENT_BYTES
CHUNK_BYTES = 16 * 1024
SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES
# The specification caps a message at 2**38 chunks (4 PiB).
MAX_CHUNKS = 1 << 38
_INFO_PREFIX = b"c2sp.org/chunked-encryption@v1+"


def derive(input_key: bytes, salt: bytes, context: bytes) -> tuple[bytes, bytes, bytes]:
    """(AEAD key, base nonce, commitment) for one message."""
    if len(input_key) != KEY_BYTES:
        raise EncryptionError(
            f"an AES-256 key is {KEY_BYTES} bytes, this one is {len(input_key)} "
            "(keys are never padded or cut)",
            key_bytes=len(input_key),
        )
    info = _INFO_PREFIX + AEAD_NAME + b"\x00" + salt + context
    length = KEY_BYTES + NONCE_BYTES + COMMITMENT_BYTES
    material = HKDFExpand(hashes.SHA512(), length, info).derive(input_key)
    return (
        material[:KEY_BYTES],
        material[KEY_BYTES : KEY_BYTES + NONCE_BYTES],
        material[KEY_BYTES + NONCE_BYTES :],
    )


def chunk_nonce(base_nonce: bytes, index: int) -> bytes:
    """The base nonce XOR the chunk number as a big-endian integer of the same width."""
    if index >= MAX_CHUNKS:
        raise EncryptionError("message exceeds 2**38 chunks (4 PiB); aborted")
    mixed = int.from_bytes(base_nonce, "big") ^ index
    return mixed.to_bytes(NONCE_BYTES, "big")


class ChunkedEncryptor:
    """Byte stage: plaintext in, ``salt || commitment || sealed chunks`` out."""

    def __init__(self, input_key: bytes, context: bytes, salt: bytes | None = None) -> None:
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        key, self._base_nonce, commitment = derive(input_key, salt, context)
        self._aead = AESGCM(key)
        self._pending = salt + commitment
        self._buffer = bytearray()
        self._index = 0
        self._finished = False

    def _seal(self, plaintext: bytes | memoryview) -> bytes:
        sealed = self._aead.encrypt(chunk_nonce(self._base_nonce, self._index), plaintext, None)
        self._index += 1
        return sealed

    def write(self, chunk: bytes) -> bytes:
        if self._finished:
            raise EncryptionError("write after the end of the encrypted stream")
        data = memoryview(chunk)
        # Top up a partly filled chunk first; then seal whole chunks straight from the input
        # into one output buffer (no intermediate copies: this stage sees every export byte).
        # A chunk that exactly fills up is sealed now: the final chunk is the (possibly
        # empty) remainder, so a full chunk is never the last one.
        head = b""
        if self._buffer:
            take = min(CHUNK_BYTES - len(self._buffer), len(data))
            self._buffer += data[:take]
            data = data[take:]
            if len(self._buffer) < CHUNK_BYTES:
                return self._take_pending()
            head = self._seal(bytes(self._buffer))
            self._buffer.clear()
        full = len(data) // CHUNK_BYTES
        pending = self._take_pending()
        out = bytearray(len(pending) + len(head) + full * SEALED_CHUNK_BYTES)
        out[: len(pending)] = pending
        offset = len(pending)
        out[offset : offset + len(head)] = head
        offset += len(head)
        target = memoryview(out)
        for i in range(full):
            nonce = chunk_nonce(self._base_nonce, self._index)
            piece = data[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]
            self._aead.encrypt_into(
                nonce, piece, None, target[offset : offset + SEALED_CHUNK_BYTES]
            )
            self._index += 1
            offset += SEALED_CHUNK_BYTES
        target.release()
        self._buffer += data[full * CHUNK_BYTES :]
        # A bytearray: callers only write and hash it, and converting it to bytes would copy
        # every export byte once more.
        return out  # type: ignore[return-value]

    def _take_pending(self) -> bytes:
        pending, self._pending = self._pending, b""
        return pending

    def flush(self) -> bytes:
        """Seal the short final chunk; the stream is complete after this."""
        if self._finished:
            return b""
        self._finished = True
        final = self._pending + self._seal(bytes(self._buffer))
        self._pending = b""
        self._buffer.clear()
        return final

    def close(self) -> None:
        self._buffer.clear()


class ChunkedDecryptor:
    """Byte stage: ciphertext in, authenticated plaintext out; flush checks the end.

    A chunk is opened only once more bytes follow it (so it cannot be the final one) or at
    :meth:`flush`, where the rest must be one short final chunk. After any failure every
    further call fails too.
    """

    def __init__(self, input_key: bytes, context: bytes) -> None:
        if len(input_key) != KEY_BYTES:
            derive(input_key, b"", b"")  # raises naming the wrong length
        self._input_key = input_key
        self._context = context
        self._aead: AESGCM | None = None
        self._base_nonce = b""
        self._buffer = bytearray()
        self._index = 0
        self._failed: EncryptionError | None = None
        self._finished = False

    def _fail(self, message: str) -> EncryptionError:
        self._failed = EncryptionError(message, chunk=self._index)
        self._buffer = bytearray()
        return self._failed

    def _check_state(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._finished:
            raise self._fail("data after the end of the encrypted stream")

    def _open_header(self) -> None:
        salt = bytes(self._buffer[:SALT_BYTES])
        commitment = bytes(self._buffer[SALT_BYTES:HEADER_BYTES])
        key, self._base_nonce, expected = derive(self._input_key, salt, self._context)
        if not hmac.compare_digest(commitment, expected):
            raise self._fail(
                "wrong key, or the header was changed (key commitment does not match); "
                "nothing was decrypted"
            )
        self._aead = AESGCM(key)
        del self._buffer[:HEADER_BYTES]

    def _open(self, sealed: bytes | memoryview) -> bytes:
        assert self._aead is not None
        try:
            plain = self._aead.decrypt(chunk_nonce(self._base_nonce, self._index), sealed, None)
        except InvalidTag:
            raise self._fail(
                f"chunk {self._index} does not authenticate (changed, reordered, repeated "
                "or cut-off data)"
            ) from None
        self._index += 1
        return plain

    def write(self, chunk: bytes) -> bytes:
        self._check_state()
        self._buffer += chunk
        if self._aead is None:
            if len(self._buffer) < HEADER_BYTES:
                return b""
            self._open_header()
        # Keep at least one sealed chunk's worth back: the final chunk is only known at EOF.
        ready = (len(self._buffer) - 1) // SEALED_CHUNK_BYTES if self._buffer else 0
        if not ready:
            return b""
        out = []
        view = memoryview(self._buffer)
        try:
            for i in range(ready):
                start = i * SEALED_CHUNK_BYTES
                out.append(self._open(view[start : start + SEALED_CHUNK_BYTES]))
        finally:
            view.release()
        del self._buffer[: ready * SEALED_CHUNK_BYTES]
        return b"".join(out)

    def flush(self) -> bytes:
        """Open the final chunk; raise if the stream is cut off or has trailing data."""
        self._check_state()
        if self._aead is None:
            raise self._fail(
                f"the encrypted stream is cut off inside its {HEADER_BYTES}-byte header"
            )
        if not TAG_BYTES <= len(self._buffer) < SEALED_CHUNK_BYTES:
            raise self._fail(
                "the encrypted stream is cut off (no short final chunk; "
                f"{len(self._buffer)} bytes left after chunk {self._index})"
            )
        final = self._open(bytes(self._buffer))
        self._buffer.clear()
        self._finished = True
        return final

    def close(self) -> None:
        self._buffer.clear()
