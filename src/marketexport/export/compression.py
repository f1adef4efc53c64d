"""Streaming compression stages, each in its standard framing.

- gzip: one gzip member (RFC 1952), written by ISA-L (about 7x zlib's speed here)
- zlib: RFC 1950 (zlib header and Adler-32), also by ISA-L
- snappy: the snappy framing format (stream identifier, CRC-32C checked chunks)
- lz4: the LZ4 frame format, as ``lz4 -d`` reads it
- zstd: a zstd frame, as ``zstd -d`` reads it

Every stage has the same three verbs: ``write(chunk) -> bytes``, ``flush() -> bytes`` (end of
stream) and ``close()``. Decompressors mirror them for ``verify`` and ``decrypt``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import cramjam
import lz4.frame
import zstandard
from isal import isal_zlib

from ..errors import CompressionError, RequestError


class Compressor(Protocol):
    def write(self, chunk: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def close(self) -> None: ...


class Decompressor(Protocol):
    def write(self, chunk: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _ZlibFamily:
    """gzip (wbits 31) or zlib (wbits 15) through ISA-L."""

    def __init__(self, wbits: int, level: int = 1) -> None:
        self._obj = isal_zlib.compressobj(level, isal_zlib.DEFLATED, wbits)

    def write(self, chunk: bytes) -> bytes:
        return self._obj.compress(chunk)

    def flush(self) -> bytes:
        return self._obj.flush()

    def close(self) -> None:
        return None


class _ZlibDecompressor:
    def __init__(self, wbits: int) -> None:
        self._obj = zlib.decompressobj(wbits)

    def write(self, chunk: bytes) -> bytes:
        out = self._obj.decompress(chunk)
        if self._obj.unused_data:
            raise CompressionError("data after the end of the compressed stream")
        return out

    def flush(self) -> bytes:
        out = self._obj.flush()
        if not self._obj.eof:
            raise CompressionError("the compressed stream is cut off (no end marker)")
        return out


class _Snappy:
    def __init__(self) -> None:
        self._obj = cramjam.snappy.Compressor()

    def write(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        # cramjam's streaming compressor takes bytes objects only, not views.
        self._obj.compress(chunk if isinstance(chunk, bytes) else bytes(chunk))
        return bytes(self._obj.flush())

    def flush(self) -> bytes:
        return bytes(self._obj.flush())

    def close(self) -> None:
        return None


class _SnappyDecompressor:
    """Streams the framing format chunk by chunk (each chunk is at most 64 KiB)."""

    def __init__(self) -> None:
        self._pending = b""
        self._seen_identifier = False

    def write(self, chunk: bytes) -> bytes:
        self._pending += chunk
        out = bytearray()
        while len(self._pending) >= 4:
            kind = self._pending[0]
            length = int.from_bytes(self._pending[1:4], "little")
            if len(self._pending) < 4 + length:
                break
            body = self._pending[4 : 4 + length]
            self._pending = self._pending[4 + length :]
            if kind == 0xFF:
                if body != b"sNaPpY":
                    raise CompressionError("bad snappy stream identifier")
                self._seen_identifier = True
            elif not self._seen_identifier:
                raise CompressionError("snappy stream does not start with its identifier")
            elif kind == 0x00:
                out += bytes(cramjam.snappy.decompress_raw(body[4:]))
            elif kind == 0x01:
                out += body[4:]
            elif kind <= 0x7F:
                raise CompressionError(f"reserved snappy chunk type {kind:#x}")
        return bytes(out)

    def flush(self) -> bytes:
        if self._pending:
            raise CompressionError("the snappy stream is cut off inside a chunk")
        return b""


class _Lz4:
    def __init__(self) -> None:
        self._obj = lz4.frame.LZ4FrameCompressor(
            compression_level=0, content_checksum=True, auto_flush=False
        )
        self._started = False

    def write(self, chunk: bytes) -> bytes:
        head = b""
        if not self._started:
            head = self._obj.begin()
            self._started = True
        return head + self._obj.compress(chunk)

    def flush(self) -> bytes:
        head = b"" if self._started else self._obj.begin()
        self._started = True
        return head + self._obj.flush()

    def close(self) -> None:
        return None


class _Lz4Decompressor:
    def __init__(self) -> None:
        self._obj = lz4.frame.LZ4FrameDecompressor()

    def write(self, chunk: bytes) -> bytes:
        if self._obj.eof and chunk:
            raise CompressionError("data after the end of the lz4 frame")
        try:
            out = self._obj.decompress(chunk)
        except RuntimeError as exc:
            raise CompressionError(f"lz4: {exc}") from None
        if self._obj.unused_data:
            raise CompressionError("data after the end of the lz4 frame")
        return out

    def flush(self) -> bytes:
        if not self._obj.eof:
            raise CompressionError("the lz4 frame is cut off (no end mark)")
        return b""


class _Zstd:
    # One thread: zstd's worker threads hold a job buffer each (about 25 MB of peak RSS at
    # 5,000,000 candles) and the format's encoders already use the other cores.
    def __init__(self, threads: int = 0, level: int = 3) -> None:
        params = zstandard.ZstdCompressionParameters.from_level(
            level, threads=0, write_checksum=True
        )
        self._obj = zstandard.ZstdCompressor(compression_params=params).compressobj()

    def write(self, chunk: bytes) -> bytes:
        return self._obj.compress(chunk)

    def flush(self) -> bytes:
        return self._obj.flush()

    def close(self) -> None:
        return None


class _ZstdDecompressor:
    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._done = False

    def write(self, chunk: bytes) -> bytes:
        if self._done and chunk:
            raise CompressionError("data after the end of the zstd frame")
        try:
            out = self._obj.decompress(chunk)
        except zstandard.ZstdError as exc:
            raise CompressionError(f"zstd: {exc}") from None
        if self._obj.eof:
            self._done = True
            if self._obj.unused_data:
                raise CompressionError("data after the end of the zstd frame")
        return out

    def flush(self) -> bytes:
        if not self._done:
            raise CompressionError("the zstd frame is cut off")
        return b""


class _Identity:
    def write(self, chunk: bytes) -> bytes:
        return chunk

    def flush(self) -> bytes:
        return b""

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class Codec:
    """A compression choice: its name, file extension and stage factories."""

    name: str
    extension: str
    parquet_name: str
    compressor: Callable[[int], Compressor]
    decompressor: Callable[[], Decompressor]


CODECS: dict[str, Codec] = {
    codec.name: codec
    for codec in (
        Codec("none", "", "none", lambda threads: _Identity(), _Identity),
        Codec(
            "gzip", ".gz", "gzip", lambda threads: _ZlibFamily(31), lambda: _ZlibDecompressor(31)
        ),
        Codec(
            "zlib", ".zz", "gzip", lambda threads: _ZlibFamily(15), lambda: _ZlibDecompressor(15)
        ),
        Codec("snappy", ".sz", "snappy", lambda threads: _Snappy(), _SnappyDecompressor),
        Codec("lz4", ".lz4", "lz4", lambda threads: _Lz4(), _Lz4Decompressor),
        Codec("zstd", ".zst", "zstd", lambda threads: _Zstd(threads), _ZstdDecompressor),
    )
}


def check_codec(name: str) -> Codec:
    """Return the codec called ``name``, or raise naming the valid ones."""
    try:
        return CODECS[name]
    except KeyError:
        raise RequestError(
            f"unknown compression {name!r} (expected one of: {', '.join(CODECS)})",
            compression=name,
        ) from None


def iter_decompressed(chunks: Iterator[bytes], codec_name: str) -> Iterator[bytes]:
    """Decompress a stream of chunks, raising CompressionError on a damaged stream."""
    stage = check_codec(codec_name).decompressor()
    try:
        for chunk in chunks:
            out = stage.write(chunk)
            if out:
                yield out
        tail = stage.flush()
    except (zlib.error, OSError, ValueError) as exc:
        raise CompressionError(f"{codec_name} stream is damaged: {exc}") from None
    if tail:
        yield tail
