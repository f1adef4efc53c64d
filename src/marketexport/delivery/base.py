"""What every destination shares: the URL forms, the Destination protocol, the records.

A destination URL names a place and a login name, never a secret: ``sftp://user@host/path``
carries no password and ``s3://bucket/prefix`` no keys. Credentials come from the key
directory, the environment or the SSH agent when the delivery runs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, unquote, urlsplit

from ..errors import RequestError

FORMS = "a directory path, sftp://user@host[:port]/path or s3://bucket/prefix"
# Bytes read from the local file per step: bounds memory and paces progress reports.
CHUNK_BYTES = 1 << 20
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class DestinationSpec:
    """A parsed destination: ``kind`` is local, sftp or s3; the other fields per kind."""

    kind: str
    path: str = ""
    user: str = ""
    host: str = ""
    port: int = 22
    bucket: str = ""

    @property
    def url(self) -> str:
        """The normal written form; it holds no secret and may be logged and stored."""
        if self.kind == "local":
            return self.path
        if self.kind == "sftp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            port = f":{self.port}" if self.port != 22 else ""
            return f"sftp://{self.user}@{host}{port}{self.path}"
        return f"s3://{self.bucket}/{self.path}" if self.path else f"s3://{self.bucket}"


def _refuse(text: str, why: str) -> RequestError:
    return RequestError(f"invalid destination {text!r}: {why} (expected {FORMS})", destination=text)


def _shown(text: str) -> str:
    """``text`` with any password between ``:`` and ``@`` masked, for error messages."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", text)


def parse_destination(text: str) -> DestinationSpec:
    """Parse a destination URL or directory path, or raise a RequestError naming it.

    A URL that carries a password, a query or a fragment is refused: secrets never travel
    in a destination. A relative directory path is made absolute here.
    """
    text = (text or "").strip()
    if not text:
        raise _refuse(text, "it is empty")
    if "://" not in text:
        return DestinationSpec("local", path=str(Path(text).expanduser().resolve()))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.password is not None or re.match(r"^[a-z0-9]+://[^/@]*:[^/@]*@", text, re.I):
        raise RequestError(
            f"destination {_shown(text)} carries a password; refused: credentials come "
            "from the key directory, the environment or the SSH agent, never from the URL",
            destination=_shown(text),
        )
    if parts.query or parts.fragment or "?" in text or "#" in text:
        # The query is not repeated: it is where a secret would hide.
        raise _refuse(
            _shown(re.split(r"[?#]", text)[0]) + "?...", "a query or fragment is not allowed"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _refuse(text, "a file:// URL names a local directory only")
        return DestinationSpec("local", path=str(Path(unquote(parts.path)).resolve()))
    if scheme == "sftp":
        return _parse_sftp(text, parts)
    if scheme == "s3":
        return _parse_s3(text, parts.netloc, parts.path)
    raise _refuse(text, f"unsupported scheme {scheme!r}")


def _parse_sftp(text: str, parts: SplitResult) -> DestinationSpec:
    user, host = parts.username, parts.hostname
    if not user or not _USER.match(unquote(user)):
        raise _refuse(text, "an sftp URL needs a login name: sftp://user@host/path")
    if not host:
        raise _refuse(text, "the host is missing")
    try:
        port = parts.port or 22
    except ValueError:
        raise _refuse(text, "the port is not a number in 1-65535") from None
    path = unquote(parts.path).rstrip("/") or "/"
    if "\x00" in path or any(step == ".." for step in path.split("/")):
        raise _refuse(text, "the path may not contain '..'")
    return DestinationSpec("sftp", path=path, user=unquote(user), host=host.lower(), port=port)


def _parse_s3(text: str, bucket: str, path: str) -> DestinationSpec:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise _refuse(text, f"{bucket!r} is not a valid bucket name (3-63 of a-z 0-9 . -)")
    prefix = unquote(path).strip("/")
    if "\x00" in prefix or any(step in ("", ".", "..") for step in prefix.split("/") if prefix):
        raise _refuse(text, "the prefix may not contain empty, '.' or '..' steps")
    return DestinationSpec("s3", path=prefix, bucket=bucket)


def is_loopback(host: str) -> bool:
    """True for localhost and every loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DeliveryFile:
    """One local file to deliver, with the size and SHA-256 it must arrive with."""

    name: str
    path: Path
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class DeliveryProgress:
    """Where the upload of one file stands."""

    name: str
    bytes_done: int
    bytes_total: int
    resumed_from: int


ProgressCallback = Callable[[DeliveryProgress], None]


@dataclass(frozen=True)
class FileReceipt:
    """One file that arrived: where, how big, its SHA-256, and where its upload resumed."""

    name: str
    location: str
    size_bytes: int
    sha256: str
    resumed_from: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "bytes": self.size_bytes,
            "sha256": self.sha256,
            "resumed_from": self.resumed_from,
        }


@dataclass
class DeliveryReceipt:
    """What a delivery did: the destination (no secrets) and every file, in arrival order."""

    destination: str
    files: list[FileReceipt] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "files": [item.to_dict() for item in self.files],
            "elapsed_s": round(self.elapsed_s, 3),
        }


class Destination(Protocol):
    """A place exports arrive: each ``put`` is atomic, verified and resumable."""

    url: str

    def put(self, item: DeliveryFile, progress: ProgressCallback | None) -> FileReceipt:
        """Upload to a temporary name, check size and SHA-256, then move into place."""
        ...

    def names(self) -> set[str]:
        """The file names present in the destination directory or prefix."""
        ...

    def read_text(self, name: str, limit_bytes: int) -> str | None:
        """A small file's text (SHA256SUMS), or None when it does not exist."""
        ...

    def sums_lock(self) -> AbstractContextManager[None]:
        """Held while SHA256SUMS is read, merged and replaced (a no-op where none exists)."""
        ...

    def remove(self, name: str) -> None:
        """Delete a file if it exists (a signature that no longer matches)."""
        ...

    def close(self) -> None: ...


def iter_chunks(path: Path, offset: int = 0, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of ``path`` from ``offset`` on, one bounded chunk at a time."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(chunk_bytes):
            yield chunk


def hash_prefix(path: Path, size_bytes: int) -> Any:
    """A running SHA-256 over the first ``size_bytes`` of ``path`` (a hashlib object)."""
    digest = hashlib.sha256()
    left = size_bytes
    with open(path, "rb") as handle:
        while left > 0:
            chunk = handle.read(min(CHUNK_BYTES, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-empty secret replaced by ``***`` (for third-party messages)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def parse_sums(text: str) -> dict[str, str]:
    """``name -> sha256`` from SHA256SUMS text (``<hex>  <name>`` lines)."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if name and re.fullmatch(r"[0-9a-f]{64}", digest):
            entries[name.lstrip("*")] = digest
    return entries


def render_sums(entries: dict[str, str]) -> bytes:
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items())).encode()
