"""``marketexport verify``: re-read an export and check every figure its manifest records."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ExportError, ManifestError, NotFoundError
from .compression import iter_decompressed
from .encryption import DecryptionKeys, Decryptor, KeyRing
from .encryption.decrypt import iter_decrypted
from .encryption.signing import SIGNATURE_SUFFIX, PublicKey, read_public_key, verify_file
from .formats import get_format
from .manifest import MANIFEST_SUFFIX, SUMS_NAME, Manifest, manifest_path_for, read_manifest

CHUNK_BYTES = 1 << 20


@dataclass
class VerifyReport:
    """What was checked and what differed."""

    path: Path
    manifest_path: Path
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # "checked", "failed", "not checked" (signed, but no public key was given or found in
    # the key directory) or "unsigned"
    signature: str = "unsigned"

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest": str(self.manifest_path),
            "ok": self.ok,
            "checked": self.checked,
            "problems": self.problems,
            "skipped": self.skipped,
            "signature": self.signature,
        }


class ChunkStream(io.RawIOBase):
    """A readable file object over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def iter_file(path: Path, digest: Any = None, counter: list[int] | None = None) -> Iterator[bytes]:
    """Read a file in chunks, feeding a hash and a byte counter on the way."""
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            if digest is not None:
                digest.update(chunk)
            if counter is not None:
                counter[0] += len(chunk)
            yield chunk


def resolve_paths(path: Path) -> tuple[Path, Path]:
    """(export file, manifest) for a path naming either of them."""
    if path.name.endswith(MANIFEST_SUFFIX):
        return path.with_name(path.name[: -len(MANIFEST_SUFFIX)]), path
    return path, manifest_path_for(path)


def verify_export(
    path: Path,
    *,
    keys: KeyRing | None = None,
    offered: DecryptionKeys | None = None,
    public_key: Path | None = None,
) -> VerifyReport:
    """Check the file's size and SHA-256, its payload's size and SHA-256, rows and times.

    An encrypted file's size and SHA-256 are checked without a key; given ``offered`` keys
    (and the key ring) it is decrypted as a stream and its plaintext checked too. Given a
    minisign ``public_key``, the signatures of the manifest and of SHA256SUMS are checked,
    and SHA256SUMS must list the file and manifest with their SHA-256. A signed manifest
    without ``public_key`` is checked with the key ring's signing key of the fingerprint it
    names; when there is none, ``report.signature`` is "not checked" and ``skipped`` says so.
    """
    if public_key is not None:
        check_public_key(public_key)
    export_file, manifest_file = resolve_paths(path)
    if not export_file.exists() and not manifest_file.exists():
        raise NotFoundError(
            f"{path} does not exist (expected an export file, or its manifest "
            f"{manifest_file.name})",
            path=str(path),
        )
    from .parts import is_parts_manifest, verify_parts

    if is_parts_manifest(manifest_file):  # a split export: each part is verified
        return verify_parts(manifest_file, keys=keys, offered=offered, public_key=public_key)
    report = VerifyReport(export_file, manifest_file)
    manifest = read_manifest(manifest_file)
    if manifest.file != export_file.name:
        report.problems.append(f"manifest names file {manifest.file!r}, not {export_file.name!r}")
    if not export_file.exists():
        raise ManifestError(f"the export file {export_file} does not exist", path=str(export_file))

    file_digest = hashlib.sha256()
    file_bytes = [0]
    payload_digest = hashlib.sha256()
    payload_bytes = [0]

    encrypted = manifest.encryption is not None
    decrypting = encrypted and offered is not None and keys is not None

    def payload_chunks() -> Iterator[bytes]:
        raw = iter_file(export_file, file_digest, file_bytes)
        if decrypting:
            assert offered is not None and keys is not None
            raw = iter_decrypted(raw, Decryptor(offered, keys))
        source = (
            raw
            if get_format(manifest.format).compresses_inside
            else iter_decompressed(raw, manifest.compression)
        )
        for chunk in source:
            payload_digest.update(chunk)
            payload_bytes[0] += len(chunk)
            yield chunk

    summary: dict[str, Any] = {}
    payload_read = not (encrypted and not decrypting)
    try:
        if not payload_read:
            for _ in iter_file(export_file, file_digest, file_bytes):
                pass
            report.skipped.append("payload (encrypted: give a key, identity or passphrase)")
        elif encrypted and get_format(manifest.format).compresses_inside:
            summary = _summarize_decrypted_file(manifest, payload_chunks(), export_file)
        else:
            summary = summarize_payload(manifest, payload_chunks(), export_file)
    except ExportError as exc:
        report.problems.append(f"payload cannot be read: {exc}")

    _compare(report, "file bytes", manifest.file_bytes, file_bytes[0])
    _compare(report, "file sha256", manifest.file_sha256, file_digest.hexdigest())
    _verify_signatures(report, manifest, file_digest.hexdigest(), keys, public_key)
    if payload_read and (not report.problems or summary):
        _compare(report, "payload bytes", manifest.payload_bytes, payload_bytes[0])
        _compare(report, "payload sha256", manifest.payload_sha256, payload_digest.hexdigest())
    for key in ("rows", "first_time", "last_time"):
        if key in summary:
            _compare(report, key.replace("_", " "), getattr(manifest, key), summary[key])
    return report


def _summarize_decrypted_file(
    manifest: Manifest, chunks: Iterator[bytes], export_file: Path
) -> dict[str, Any]:
    """Parquet needs a seekable file: the plaintext goes to a private temporary file beside
    the export (mode 0600), is summarised, and is removed whatever happens."""
    fd, name = tempfile.mkstemp(prefix=".verify-", suffix=".part", dir=export_file.parent)
    plain = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        return summarize_payload(manifest, iter([]), plain)
    finally:
        plain.unlink(missing_ok=True)


def check_public_key(path: Path) -> None:
    """A public key the caller names must exist and be one: otherwise it is bad input (exit
    code 2), not a verification that failed."""
    if not path.is_file():
        raise NotFoundError(
            f"public key {path} does not exist (expected a minisign public key file, such as "
            "<key dir>/NAME.minisign.pub)",
            path=str(path),
        )
    try:
        read_public_key(path)
    except ManifestError as exc:
        raise ConfigError(str(exc), path=str(path)) from None


def _verify_signatures(
    report: VerifyReport,
    manifest: Manifest,
    file_sha: str,
    keys: KeyRing | None,
    public_key: Path | None,
) -> None:
    """Check the signatures with the given public key, else with the key directory's key
    that the manifest names; say plainly when a signed export's signature went unchecked."""
    manifest_file = report.manifest_path
    signature_file = manifest_file.with_name(manifest_file.name + SIGNATURE_SUFFIX)
    if public_key is not None:
        try:
            key = read_public_key(public_key)
        except ManifestError as exc:
            report.problems.append(str(exc))
            return
        _check_signatures(report, file_sha, key, "")
        return
    if manifest.signed_by is None and not signature_file.exists():
        return

    found = _directory_key(keys, manifest.signed_by)
    if found is not None:
        name, key = found
        _check_signatures(report, file_sha, key, f" (key {name!r} of the key directory)")
        return
    report.signature = "not checked"
    signer = f"key {manifest.signed_by}" if manifest.signed_by else "an unnamed key"
    where = f", which is not in the key directory {keys.directory.path}" if keys else ""
    report.skipped.append(
        f"signatures (the manifest is signed by {signer}{where}; "
        "give --public-key KEY.minisign.pub to check who wrote it)"
    )


def _directory_key(keys: KeyRing | None, fingerprint: str | None) -> tuple[str, PublicKey] | None:
    """The key directory's signing key with this minisign fingerprint, with its name."""
    if keys is None or fingerprint is None:
        return None
    for info in keys.directory.list():
        if info.kind == "signing" and fingerprint in info.fingerprints and info.public_path:
            try:
                return info.name, read_public_key(info.public_path)
            except ManifestError:
                return None
    return None


def _check_signatures(report: VerifyReport, file_sha: str, key: PublicKey, source: str) -> None:
    """The minisign signatures of the manifest and SHA256SUMS, and the SHA256SUMS lines."""
    export_file, manifest_file = report.path, report.manifest_path
    report.signature = "not checked"
    try:
        verify_file(manifest_file, key)
        report.checked.append("manifest signature" + source)
        sums = export_file.parent / SUMS_NAME
        verify_file(sums, key)
        report.checked.append("SHA256SUMS signature" + source)
    except ManifestError as exc:
        report.problems.append(str(exc))
        report.signature = "failed"
        return
    report.signature = "checked"
    listed = {}
    for line in sums.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    manifest_sha = hashlib.sha256(manifest_file.read_bytes()).hexdigest()
    _compare(report, "SHA256SUMS file entry", listed.get(export_file.name), file_sha)
    _compare(report, "SHA256SUMS manifest entry", listed.get(manifest_file.name), manifest_sha)


def summarize_payload(
    manifest: Manifest, chunks: Iterator[bytes], path: Path | None = None
) -> dict[str, Any]:
    """Rows and first/last time of a payload, read by the format's own summariser."""
    spec = get_format(manifest.format)
    stream = io.BufferedReader(ChunkStream(chunks), buffer_size=CHUNK_BYTES)
    time_column = _time_column(manifest)
    plain = path if spec.compresses_inside else None
    summary = spec.summarize(stream, time_column, plain) if spec.summarize else {}
    # Drain what the summariser did not read, so that the hashes cover the whole payload.
    while stream.read(CHUNK_BYTES):
        pass
    return summary


def _time_column(manifest: Manifest) -> str | None:
    from ..datasets import get_dataset

    name = get_dataset(manifest.dataset).time_column
    return name if any(f["name"] == name for f in manifest.schema) else None


def _compare(report: VerifyReport, what: str, recorded: Any, found: Any) -> None:
    if recorded == found:
        report.checked.append(what)
    else:
        report.problems.append(f"{what}: manifest says {recorded!r}, file has {found!r}")
