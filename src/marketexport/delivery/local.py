"""A local directory as destination: a verified copy, renamed into place."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..errors import ConfigError, DeliveryError
from ..export.sink import fsync_dir
from .base import DeliveryFile, DeliveryProgress, FileReceipt, ProgressCallback, iter_chunks


def check_writable(directory: Path) -> None:
    """Before an export with a local destination: the directory exists (or is made) and takes
    files, so that a destination nobody can write to is an input error, not a failure
    after the export has run.

    Raises:
        ConfigError: it cannot be made, is not a directory, or cannot be written.
    """
    probe = directory / f".marketexport-probe-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"destination {directory} cannot take files: {exc.strerror} "
            "(give --destination a writable directory, sftp:// or s3:// URL)",
            destination=str(directory),
        ) from None


class LocalDestination:
    """Copies each file to ``.<name>.part`` in the directory, checks it, then renames it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.url = str(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"destination directory {directory} cannot be created: {exc.strerror}",
                destination=self.url,
            ) from None

    def put(self, item: DeliveryFile, progress: ProgressCallback | None) -> FileReceipt:
        target = self.directory / item.name
        if target.exists() and target.resolve() == item.path.resolve():
            # Delivering into the export's own directory: the file is already in place.
            return FileReceipt(item.name, str(target), item.size_bytes, item.sha256)
        temp = self.directory / f".{item.name}.part"
        try:
            digest, size = self._copy(item, temp, progress)
            if size != item.size_bytes or digest != item.sha256:
                _discard(temp)
                raise DeliveryError(
                    f"copy of {item.name} in {self.directory} does not match its manifest "
                    f"({size} bytes, sha256 {digest}; expected {item.size_bytes} bytes, "
                    f"sha256 {item.sha256}); not delivered",
                    destination=self.url,
                    file=item.name,
                )
            os.replace(temp, target)
            fsync_dir(self.directory)
        except OSError as exc:
            _discard(temp)
            raise DeliveryError(
                f"delivering {item.name} to {self.directory} failed: {exc.strerror}",
                destination=self.url,
                file=item.name,
                retryable=exc.errno in (28, 122),  # ENOSPC, EDQUOT: may free up
            ) from None
        return FileReceipt(item.name, str(target), size, digest)

    def _copy(
        self, item: DeliveryFile, temp: Path, progress: ProgressCallback | None
    ) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        # "wb" truncates a temporary file an interrupted earlier delivery left behind.
        with open(temp, "wb") as out:
            for chunk in iter_chunks(item.path):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(DeliveryProgress(item.name, size, item.size_bytes, 0))
            out.flush()
            os.fsync(out.fileno())
        return digest.hexdigest(), size

    def names(self) -> set[str]:
        return {entry.name for entry in self.directory.iterdir() if entry.is_file()}

    def read_text(self, name: str, limit_bytes: int) -> str | None:
        path = self.directory / name
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            return handle.read(limit_bytes).decode("utf-8", "replace")

    @contextmanager
    def sums_lock(self) -> Iterator[None]:
        # The same lock the export pipeline takes to rewrite SHA256SUMS in a directory.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def remove(self, name: str) -> None:
        try:
            (self.directory / name).unlink(missing_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"removing {name} from {self.directory} failed: {exc.strerror}",
                destination=self.url,
                file=name,
            ) from None

    def close(self) -> None:
        return None


def _discard(temp: Path) -> None:
    # Cleaning up must not hide the first error: on a read-only file system even unlinking
    # a file that was never created fails (EROFS, not ENOENT).
    with suppress(OSError):
        temp.unlink(missing_ok=True)
