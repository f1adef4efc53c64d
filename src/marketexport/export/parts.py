"""The manifest of a split export: every part with its checksums and rows, in one file.

A split export's parts are ordinary exports (a file, its manifest, SHA256SUMS), each
committed on its own. When the last one is in, :func:`write_parts_manifest` writes
``<name>.manifest.json`` of kind ``parts`` that lists them (paths relative to the
manifest, SHA-256 of each file and of each part's manifest, rows, byte counts, first and
last time), and, when asked, ``<name>``: the part files laid end to end. That is one
valid file for codecs whose streams concatenate (gzip members, zstd and lz4 frames, or
no codec) and formats without header or footer (JSON Lines).

``marketexport verify`` on either path checks every part as it checks any export, that
each part's manifest is the one listed, that the rows add up, and for the joined file its
size, SHA-256, that its pieces are the part files byte for byte, and its payload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ExportError, ManifestError
from .compression import iter_decompressed
from .manifest import MANIFEST_SUFFIX, manifest_field, read_manifest, update_sums
from .sink import FileSink, write_atomic

PARTS_KIND = "parts"
CHUNK_BYTES = 1 << 20

if TYPE_CHECKING:
    from .verify import VerifyReport


@dataclass(frozen=True)
class PartsResult:
    """What the final step of a split export wrote."""

    manifest_path: Path
    manifest_sha256: str
    joined_path: Path | None
    sums_path: Path
    document: dict[str, Any]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def part_entry(number: int, task_id: str, export_file: Path, directory: Path) -> dict[str, Any]:
    """One part as the parts manifest lists it, read from the part's own manifest."""
    manifest_file = export_file.with_name(export_file.name + MANIFEST_SUFFIX)
    manifest = read_manifest(manifest_file)
    relative = Path("..") / export_file.parent.name / export_file.name
    if export_file.parent.resolve() == directory.resolve():
        relative = Path(export_file.name)
    return {
        "part": number,
        "task_id": task_id,
        "file": relative.as_posix(),
        "manifest": relative.as_posix() + MANIFEST_SUFFIX,
        "manifest_sha256": _sha256_file(manifest_file),
        "rows": manifest.rows,
        "bytes": {"payload": manifest.payload_bytes, "file": manifest.file_bytes},
        "sha256": {"payload": manifest.payload_sha256, "file": manifest.file_sha256},
        "first_time": manifest.first_time,
        "last_time": manifest.last_time,
    }


def write_parts_manifest(
    directory: Path,
    name: str,
    whole: dict[str, Any],
    parts: list[tuple[int, str, Path]],
    *,
    join: bool,
    extra: dict[str, Any] | None = None,
) -> PartsResult:
    """Write the parts manifest (and the joined file when ``join``) into ``directory``.

    ``whole`` holds the whole export's ``dataset``, ``format``, ``compression``,
    ``request`` and ``split``; ``parts`` is (number, task id, export file) in part order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    entries = [part_entry(number, task_id, path, directory) for number, task_id, path in parts]
    joined = None
    if join:
        joined = _join(directory / name, [path for _, _, path in parts], whole["compression"])
    document = {
        "marketexport_manifest": 1,
        "kind": PARTS_KIND,
        "file": name,
        "dataset": whole["dataset"],
        "format": whole["format"],
        "compression": whole["compression"],
        "request": whole["request"],
        "split": whole["split"],
        "rows": sum(entry["rows"] for entry in entries),
        "first_time": next((e["first_time"] for e in entries if e["first_time"]), None),
        "last_time": next((e["last_time"] for e in reversed(entries) if e["last_time"]), None),
        "parts": entries,
        "joined": joined,
        "created_at": datetime.now(UTC).isoformat(),
        "version": __version__,
        **({"extra": extra} if extra else {}),
    }
    manifest_path = directory / (name + MANIFEST_SUFFIX)
    text = (json.dumps(document, indent=2) + "\n").encode()
    manifest_sha = write_atomic(manifest_path, text)
    sums_entries = {manifest_path.name: manifest_sha}
    if joined is not None:
        sums_entries[name] = joined["sha256"]["file"]
    sums = update_sums(directory, sums_entries)
    joined_path = directory / name if joined is not None else None
    return PartsResult(manifest_path, manifest_sha, joined_path, sums, document)


def _join(target: Path, files: list[Path], codec: str) -> dict[str, Any]:
    """Lay the part files end to end into ``target`` (atomically); hash file and payload."""
    payload = hashlib.sha256()
    payload_bytes = 0
    with FileSink(target) as sink:
        for path in files:
            for chunk in iter_decompressed(_iter_bytes(path, sink), codec):
                payload.update(chunk)
                payload_bytes += len(chunk)
        sink.commit()
    return {
        "bytes": {"payload": payload_bytes, "file": sink.bytes_written},
        "sha256": {"payload": payload.hexdigest(), "file": sink.sha256},
    }


def _iter_bytes(path: Path, sink: FileSink) -> Iterator[bytes]:
    """The file's chunks, each also written to the sink on the way to the decompressor."""
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            sink.write(chunk)
            yield chunk


def is_parts_manifest(manifest_file: Path) -> bool:
    """Whether the file is a parts manifest (False when missing or not JSON)."""
    try:
        data = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == PARTS_KIND


def read_parts_manifest(manifest_file: Path) -> dict[str, Any]:
    """The parts manifest's document, with every field verify reads checked."""
    try:
        data = json.loads(manifest_file.read_text(encoding="utf-8"))
        if data.get("kind") != PARTS_KIND or not isinstance(data.get("parts"), list):
            raise ValueError("not a parts manifest")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise ManifestError(
            f"parts manifest {manifest_file} cannot be read: {exc}", path=str(manifest_file)
        ) from None
    try:
        _check_parts_fields(data)
    except ManifestError as exc:
        raise ManifestError(f"{manifest_file}: {exc}", path=str(manifest_file)) from None
    return dict(data)


_PART_FIELDS = (
    ("part", int, "a part number"),
    ("file", str, "a file name"),
    ("manifest", str, "a manifest file name"),
    ("manifest_sha256", str, "a SHA-256 in hex"),
    ("rows", int, "a row count"),
    ("bytes.file", int, "a byte count"),
    ("sha256.file", str, "a SHA-256 in hex"),
)
_JOINED_FIELDS = (
    ("sha256.file", str, "a SHA-256 in hex"),
    ("sha256.payload", str, "a SHA-256 in hex"),
    ("bytes.payload", int, "a byte count"),
)


def _check_parts_fields(data: dict[str, Any]) -> None:
    manifest_field(data, "file", str, "the joined file's name")
    manifest_field(data, "compression", str, "a codec name")
    manifest_field(data, "rows", int, "a row count")
    for index, entry in enumerate(data["parts"]):
        if not isinstance(entry, dict):
            raise ManifestError(
                f"manifest field 'parts[{index}]' is malformed (expected an object)"
            )
        for path, kind, expected in _PART_FIELDS:
            manifest_field(entry, path, kind, expected, within=f"parts[{index}].")
    joined = manifest_field(data, "joined", (dict, type(None)), "an object or null", default=None)
    if joined is not None:
        for path, kind, expected in _JOINED_FIELDS:
            manifest_field(joined, path, kind, expected, within="joined.")


def verify_parts(manifest_file: Path, **options: Any) -> VerifyReport:
    """Check every part of a split export, and the joined file when there is one.

    ``options`` are passed to :func:`~marketexport.export.verify.verify_export` for each
    part (keys, offered keys, public key). Returns a VerifyReport.
    """
    from .verify import VerifyReport, verify_export

    document = read_parts_manifest(manifest_file)
    directory = manifest_file.parent
    report = VerifyReport(directory / str(document["file"]), manifest_file)
    signatures: set[str] = set()
    for entry in document["parts"]:
        number = entry["part"]
        part_file = directory / entry["file"]
        part_manifest = directory / entry["manifest"]
        if not part_file.exists() or not part_manifest.exists():
            report.problems.append(f"part {number}: {part_file} or its manifest is missing")
            continue
        _compare(report, f"part {number} manifest sha256", entry["manifest_sha256"],
                 _sha256_file(part_manifest))  # fmt: skip
        recorded = read_manifest(part_manifest)
        _compare(report, f"part {number} rows", entry["rows"], recorded.rows)
        _compare(report, f"part {number} sha256", entry["sha256"]["file"], recorded.file_sha256)
        sub = verify_export(part_file, **options)
        signatures.add(sub.signature)
        report.problems.extend(f"part {number}: {problem}" for problem in sub.problems)
        report.skipped.extend(f"part {number}: {skipped}" for skipped in sub.skipped)
        if sub.ok:
            report.checked.append(f"part {number} ({', '.join(sub.checked)})")
    _compare(report, "rows", document["rows"], sum(e["rows"] for e in document["parts"]))
    report.signature = next(
        (state for state in ("failed", "not checked", "checked") if state in signatures),
        "unsigned",
    )
    if document.get("joined"):
        _verify_joined(report, directory / str(document["file"]), document)
    return report


def _verify_joined(report: VerifyReport, joined: Path, document: dict[str, Any]) -> None:
    """The joined file: size, SHA-256, each piece equal to its part, and its payload."""
    if not joined.exists():
        report.problems.append(f"the joined file {joined} is missing")
        return
    recorded = document["joined"]
    file_digest, payload_digest = hashlib.sha256(), hashlib.sha256()
    payload_bytes = [0]
    with joined.open("rb") as handle:
        for entry in document["parts"]:
            piece = hashlib.sha256()
            chunks = _iter_piece(handle, int(entry["bytes"]["file"]), (piece, file_digest))
            try:
                for chunk in iter_decompressed(chunks, document["compression"]):
                    payload_digest.update(chunk)
                    payload_bytes[0] += len(chunk)
            except ExportError as exc:
                report.problems.append(f"joined piece {entry['part']} cannot be read: {exc}")
            for _ in chunks:  # whatever the decompressor left unread still counts
                pass
            _compare(report, f"joined piece {entry['part']} sha256",
                     entry["sha256"]["file"], piece.hexdigest())  # fmt: skip
        extra_bytes = 0
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            file_digest.update(chunk)
            extra_bytes += len(chunk)
    if extra_bytes:
        report.problems.append(f"the joined file has {extra_bytes} bytes after its parts")
    _compare(report, "joined file sha256", recorded["sha256"]["file"], file_digest.hexdigest())
    _compare(report, "joined payload bytes", recorded["bytes"]["payload"], payload_bytes[0])
    _compare(report, "joined payload sha256", recorded["sha256"]["payload"],
             payload_digest.hexdigest())  # fmt: skip


def _iter_piece(handle: Any, size: int, digests: tuple[Any, ...]) -> Iterator[bytes]:
    """The next ``size`` bytes of the joined file, in chunks, fed to the digests."""
    left = size
    while left > 0:
        chunk = handle.read(min(CHUNK_BYTES, left))
        if not chunk:
            return
        for digest in digests:
            digest.update(chunk)
        left -= len(chunk)
        yield chunk


def _compare(report: VerifyReport, what: str, recorded: Any, found: Any) -> None:
    if recorded == found:
        report.checked.append(what)
    else:
        report.problems.append(f"{what}: manifest says {recorded!r}, file has {found!r}")
