"""Streaming decryption of a whole file, to a new file that appears only when complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...errors import CompressionError, ConfigError, EncryptionError, ManifestError, SinkError
from ..compression import CODECS, check_codec, iter_decompressed
from ..formats import get_format
from ..manifest import manifest_path_for, read_manifest
from ..sink import FileSink
from . import SCHEMES, SNIFF_BYTES, Decryptor, sniff_scheme
from .base import DecryptionKeys
from .keys import KeyRing

READ_BYTES = 1 << 20


def iter_decrypted(chunks: Iterator[bytes], decryptor: Decryptor) -> Iterator[bytes]:
    """Authenticated plaintext of an encrypted chunk stream; raises on any damage."""
    try:
        for chunk in chunks:
            out = decryptor.write(chunk)
            if out:
                yield out
        tail = decryptor.flush()
        if tail:
            yield tail
    finally:
        decryptor.close()


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(READ_BYTES), b"")


def strip_suffix(name: str, suffixes: list[str]) -> str:
    for suffix in suffixes:
        if suffix and name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def default_output(source: Path, decompress: bool) -> Path:
    """FILE.csv.zst.mxe -> FILE.csv.zst, or FILE.csv with decompression."""
    name = strip_suffix(source.name, sorted({s.extension for s in SCHEMES.values()}))
    if name == source.name:
        name += ".decrypted"
    if decompress:
        name = strip_suffix(name, [c.extension for c in CODECS.values()])
    return source.with_name(name)


def codec_of(source: Path, decryptor: Decryptor) -> str:
    """The outer compression of the plaintext: from the container header, else the manifest
    beside the file, else the file name."""
    content = (decryptor.header or {}).get("content") or {}
    fmt, codec = content.get("format"), content.get("compression")
    if codec is None:
        try:
            manifest = read_manifest(manifest_path_for(source))
            fmt, codec = manifest.format, manifest.compression
        except ManifestError:
            stem = strip_suffix(source.name, sorted({s.extension for s in SCHEMES.values()}))
            codec = next(
                (c.name for c in CODECS.values() if c.extension and stem.endswith(c.extension)),
                "none",
            )
    if fmt is not None and get_format(fmt).compresses_inside:
        return "none"
    return check_codec(str(codec)).name


_EXPECTED = (
    "expected a marketexport container, FILE.mxe from 'marketexport export --encrypt', or an "
    "age file"
)


def check_encrypted_file(source: Path) -> None:
    """Raise a ConfigError (exit code 2) unless ``source`` is a regular file that starts
    like a marketexport container or an age file; a damaged file past its first bytes is
    the decryptor's to report."""
    if not source.exists():
        raise ConfigError(f"{source}: no such file ({_EXPECTED})", path=str(source))
    if not source.is_file():
        what = "a directory" if source.is_dir() else "not a regular file"
        raise ConfigError(f"{source} is {what} ({_EXPECTED})", path=str(source))
    try:
        with source.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise ConfigError(f"{source} cannot be read: {exc.strerror}", path=str(source)) from None
    if not head:
        raise ConfigError(f"{source} is empty ({_EXPECTED})", path=str(source))
    if sniff_scheme(head) is None:
        raise ConfigError(
            f"{source} is not an encrypted export (it starts with {head[:12]!r}; {_EXPECTED})",
            path=str(source),
        )


@dataclass(frozen=True)
class DecryptResult:
    """Where the plaintext went, and what it was."""

    path: Path
    scheme: str
    bytes_written: int
    decompressed_from: str | None


def decrypt_file(
    source: Path,
    target: Path | None,
    offered: DecryptionKeys,
    keys: KeyRing,
    *,
    decompress: bool = False,
    overwrite: bool = False,
) -> DecryptResult:
    """Decrypt (and optionally decompress) ``source``; the target appears only if every
    chunk authenticated and the end of the stream was proven. On any failure nothing is
    left behind."""
    check_encrypted_file(source)
    target = target or default_output(source, decompress)
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists (give --force to replace it)", path=str(target))
    decryptor = Decryptor(offered, keys)
    chunks = iter_decrypted(_read(source), decryptor)
    codec = "none"
    with FileSink(target) as sink:
        os.chmod(sink.temp_path, 0o600)  # plaintext of an encrypted file: owner only
        try:
            first = next(chunks, b"")
            if decompress:
                codec = codec_of(source, decryptor)
                for chunk in iter_decompressed(_chain(first, chunks), codec):
                    sink.write(chunk)
            else:
                for chunk in _chain(first, chunks):
                    sink.write(chunk)
            sink.commit()
        except (EncryptionError, CompressionError):
            raise
        except OSError as exc:
            raise SinkError(f"writing {target} failed: {exc}", path=str(target)) from None
    return DecryptResult(target, decryptor.scheme or "?", sink.bytes_written, codec)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
