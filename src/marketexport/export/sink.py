"""The file sink: a temporary name beside the target, hashed as written, renamed at the end."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ..errors import ConfigError, SinkError

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".part"


def temp_name_for(target: Path) -> Path:
    """A hidden temporary name in the target's directory (same file system: atomic rename)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSink:
    """Writes bytes to a temporary file, counting and hashing them; commit renames it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.temp_path = temp_name_for(target)
        self.bytes_written = 0
        self._sha256 = hashlib.sha256()
        self._committed = False
        try:
            self._file = open(self.temp_path, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise SinkError(
                f"cannot write to {target.parent}: {exc.strerror}", path=str(target)
            ) from None

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise SinkError(
                f"writing {self.target} failed: {exc.strerror}; export aborted",
                path=str(self.target),
                retryable=exc.errno in (28, 122),  # ENOSPC, EDQUOT: may free up
            ) from None
        self._sha256.update(chunk)
        self.bytes_written += len(chunk)

    def commit(self) -> None:
        """Flush, fsync and rename into place; the target then holds the whole file."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.temp_path, self.target)
        except OSError as exc:
            self.abort()
            raise SinkError(
                f"finishing {self.target} failed: {exc.strerror}", path=str(self.target)
            ) from None
        self._committed = True
        fsync_dir(self.target.parent)

    def abort(self) -> None:
        """Remove the temporary file; the target is left as it was."""
        if self._committed:
            return
        try:
            self._file.close()
        except OSError:
            logger.debug("closing %s failed", self.temp_path, exc_info=True)
        try:
            self.temp_path.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove temporary file %s", self.temp_path)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.abort()


def check_replaceable(paths: list[Path]) -> None:
    """Raise a ConfigError (exit code 2) for the first path that exists as something a file
    cannot replace (a directory, a pipe...). Checked before an export starts, so that it
    never fails after its file is in place."""
    for path in paths:
        if path.exists() and not path.is_file():
            what = "a directory" if path.is_dir() else "not a regular file"
            raise ConfigError(
                f"{path} is {what}, where the export must write a file; move it away and "
                "export again (nothing was written)",
                path=str(path),
            )


def remove_files(paths: list[Path]) -> None:
    """Remove files an export put in place before it failed; a file already gone is fine."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove %s after a failed export", path)


def write_atomic(target: Path, data: bytes) -> str:
    """Write a small file atomically; return its SHA-256."""
    with FileSink(target) as sink:
        sink.write(data)
        sink.commit()
        return sink.sha256


_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block is done, then deliver them.

    For the last steps of an export (the rename over an earlier export of the same name,
    its manifest, SHA256SUMS): interrupted there, the earlier export would be gone and
    SHA256SUMS would name files that are not there. The steps take milliseconds. Outside
    the main thread (the task runner's exports) signals do not arrive, so nothing is held.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda number, frame: received.append(number))
        for signum in _DEFERRED_SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])


def prepare_output_dir(directory: Path) -> Path:
    """Create the output directory and check it can be written, before any work."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(
            f"output path {directory} is a file, not a directory (give --output a directory; "
            "the export's file name is chosen from its data)",
            path=str(directory),
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"output directory {directory} cannot be created: {exc.strerror} "
            "(give --output a writable directory)",
            path=str(directory),
        ) from None
    if not directory.is_dir():
        raise ConfigError(
            f"output path {directory} is not a directory (give --output a directory)",
            path=str(directory),
        )
    probe = directory / f".marketexport-probe-{id(directory)}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"output directory {directory} is not writable: {exc.strerror}",
            path=str(directory),
        ) from None
    return directory


def missing_dirs(directory: Path) -> list[Path]:
    """``directory`` and those of its parents that do not exist yet, innermost first."""
    return [path for path in (directory, *directory.parents) if not path.exists()]


def remove_empty_dirs(made: list[Path]) -> None:
    """Remove directories that :func:`missing_dirs` listed, innermost first, while empty."""
    for path in made:
        if not path.is_dir() or any(path.iterdir()):
            break
        path.rmdir()
