"""The manifest beside each export, and the SHA256SUMS file of the output directory."""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import __version__
from ..errors import ManifestError
from .sink import write_atomic

MANIFEST_SUFFIX = ".manifest.json"
SUMS_NAME = "SHA256SUMS"
_DICT_OR_NULL = (dict, type(None))
_TEXT_OR_NULL = (str, type(None))


@dataclass
class Manifest:
    """Everything recorded about one export file."""

    file: str
    dataset: str
    format: str
    compression: str
    request: dict[str, Any]
    rows: int
    payload_bytes: int
    file_bytes: int
    payload_sha256: str
    file_sha256: str
    schema: list[dict[str, str]]
    time_unit: str
    first_time: str | None
    last_time: str | None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    version: str = __version__
    notes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # Scheme and key ids or recipient fingerprints when the file is encrypted (never a key).
    encryption: dict[str, Any] | None = None
    # The signing key's minisign id when the manifest and SHA256SUMS are signed.
    signed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "marketexport_manifest": 1,
            "file": self.file,
            "dataset": self.dataset,
            "format": self.format,
            "compression": self.compression,
            "request": self.request,
            "rows": self.rows,
            "bytes": {"payload": self.payload_bytes, "file": self.file_bytes},
            "sha256": {"payload": self.payload_sha256, "file": self.file_sha256},
            "schema": self.schema,
            "time_unit": self.time_unit,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "created_at": self.created_at,
            "version": self.version,
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
            **({"encryption": self.encryption} if self.encryption else {}),
            **({"signed_by": self.signed_by} if self.signed_by else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """The manifest in ``data``, or a ManifestError naming the first field that is
        missing or of the wrong type and what it should hold."""
        fields = {
            "file": manifest_field(data, "file", str, "the export's file name"),
            "dataset": manifest_field(data, "dataset", str, "a dataset name"),
            "format": manifest_field(data, "format", str, "a format name"),
            "compression": manifest_field(data, "compression", str, "a codec name"),
            "request": manifest_field(data, "request", dict, "an object"),
            "rows": manifest_field(data, "rows", int, "a row count"),
            "payload_bytes": manifest_field(data, "bytes.payload", int, "a byte count"),
            "file_bytes": manifest_field(data, "bytes.file", int, "a byte count"),
            "payload_sha256": manifest_field(data, "sha256.payload", str, "a SHA-256 in hex"),
            "file_sha256": manifest_field(data, "sha256.file", str, "a SHA-256 in hex"),
            "schema": manifest_field(data, "schema", list, "a list of columns"),
        }
        for column in fields["schema"]:
            if not (isinstance(column, dict) and isinstance(column.get("name"), str)):
                raise ManifestError(
                    "manifest field 'schema' is malformed (expected a list of objects with "
                    "a 'name' and a 'type')"
                )
        return cls(
            **fields,
            time_unit=manifest_field(data, "time_unit", str, "ms, us or ns"),
            first_time=manifest_field(data, "first_time", _TEXT_OR_NULL, "a time or null"),
            last_time=manifest_field(data, "last_time", _TEXT_OR_NULL, "a time or null"),
            created_at=manifest_field(data, "created_at", str, "a time"),
            version=manifest_field(data, "version", str, "a version"),
            notes=manifest_field(data, "notes", dict, "an object", default={}),
            extra=manifest_field(data, "extra", dict, "an object", default={}),
            encryption=manifest_field(data, "encryption", _DICT_OR_NULL, "an object", default=None),
            signed_by=manifest_field(data, "signed_by", _TEXT_OR_NULL, "a key id", default=None),
        )

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n").encode()


_REQUIRED = object()
_JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "text",
    int: "a number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


def manifest_field(
    data: dict[str, Any],
    path: str,
    kinds: type | tuple[type, ...],
    expected: str,
    *,
    default: Any = _REQUIRED,
    within: str = "",
) -> Any:
    """The value at ``path`` (dotted) of a manifest, checked against ``kinds``.

    Raises a ManifestError naming the field (``within`` + ``path``, e.g. ``parts[2].rows``)
    and ``expected`` when it is missing (and has no ``default``) or of another type.
    """
    value: Any = data
    parts = path.split(".")
    path = within + path
    for depth, part in enumerate(parts):
        if not isinstance(value, dict):
            above = within + ".".join(parts[:depth])
            found = _JSON_TYPES.get(type(value), type(value).__name__)
            raise ManifestError(
                f"manifest field {above!r} is malformed: {found} (expected an object)"
            )
        if part not in value:
            if default is not _REQUIRED:
                return default
            raise ManifestError(f"manifest field {path!r} is missing (expected {expected})")
        value = value[part]
    wrong_bool = isinstance(value, bool) and kinds is int
    if wrong_bool or not isinstance(value, kinds):
        found = _JSON_TYPES.get(type(value), type(value).__name__)
        raise ManifestError(f"manifest field {path!r} is malformed: {found} (expected {expected})")
    if kinds is int and value < 0:
        raise ManifestError(f"manifest field {path!r} is negative (expected {expected})")
    return value


def schema_description(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def manifest_path_for(export_file: Path) -> Path:
    return export_file.with_name(export_file.name + MANIFEST_SUFFIX)


def read_manifest(path: Path) -> Manifest:
    """Read a manifest file, or raise ManifestError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}", path=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest {path} cannot be read: {exc}", path=str(path)) from None
    if not isinstance(data, dict) or data.get("marketexport_manifest") != 1:
        raise ManifestError(f"{path} is not a marketexport manifest", path=str(path))
    return Manifest.from_dict(data)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Concurrent exports into one directory each rewrite SHA256SUMS; they take turns on a
    # lock held on the directory itself, so no lock file is left behind.
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# The lines update_sums writes (sha256sum's text mode); others (binary mode ``*name``, BSD
# ``SHA256 (name) = ...``, comments) are another tool's, kept unless they name a file that
# the export replaces.
_SUMS_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
_OTHER_NAMES = (
    re.compile(r"[0-9a-fA-F]{64} \*(.+)"),
    re.compile(r"SHA256 \((.+)\) = [0-9a-fA-F]{64}"),
)


def _named_in(line: str) -> str | None:
    for form in _OTHER_NAMES:
        found = form.fullmatch(line)
        if found:
            return found[1].removeprefix("./")
    return None


def update_sums(
    directory: Path, entries: dict[str, str], sign: Callable[[Path], Any] | None = None
) -> Path:
    """Add or replace ``name -> sha256`` lines in the directory's SHA256SUMS.

    ``sign`` is called with the new file while the directory lock is held, so its signature
    always matches the SHA256SUMS beside it; without it a signature left from an earlier
    export (which would no longer match) is removed.
    """
    sums = directory / SUMS_NAME
    with _locked(directory):
        current: dict[str, str] = {}
        others: list[str] = []  # lines of other tools, kept as they are
        if sums.exists():
            # a line of another tool may name a file in another encoding: kept byte for byte
            text = sums.read_text(encoding="utf-8", errors="surrogateescape")
            for line in text.splitlines():
                ours = _SUMS_LINE.fullmatch(line)
                name = ours[2].removeprefix("./") if ours else None
                if ours is None:
                    if _named_in(line) not in entries:
                        others.append(line + "\n")
                elif name is not None and (directory / name).exists():
                    current[name] = ours[1]
        current.update(entries)
        lines = [f"{digest}  {name}\n" for name, digest in sorted(current.items())]
        write_atomic(sums, "".join(others + lines).encode("utf-8", "surrogateescape"))
        if sign is not None:
            sign(sums)
        else:
            sums.with_name(SUMS_NAME + ".minisig").unlink(missing_ok=True)
    return sums


def final_paths(export_file: Path) -> list[Path]:
    """Every name an export into ``export_file``'s directory writes or replaces: the file,
    its manifest, SHA256SUMS, and their signatures (removed by an unsigned export)."""
    manifest = manifest_path_for(export_file)
    sums = export_file.parent / SUMS_NAME
    signatures = [path.with_name(path.name + ".minisig") for path in (manifest, sums)]
    return [export_file, manifest, sums, *signatures]


def write_manifest(export_file: Path, manifest: Manifest) -> tuple[Path, str]:
    """Write the manifest atomically beside the file; return its path and SHA-256."""
    path = manifest_path_for(export_file)
    digest = write_atomic(path, manifest.to_bytes())
    return path, digest
