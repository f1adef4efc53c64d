"""SFTP destination (paramiko): temporary name, read-back SHA-256, rename, resume.

Each file is written to ``.<name>.part`` in the remote directory. When that temporary file
already exists (an interrupted delivery), its bytes are read back and hashed; if they are a
prefix of the local file the upload continues from its end, otherwise it starts over in the
same file. After the upload the remote file is read back over the same SFTP channel and its
SHA-256 and size are compared with the manifest; only then is it renamed into place with
OpenSSH's atomic ``posix-rename``.

Reading back, rather than running ``sha256sum`` over an exec channel, works on SFTP-only
accounts (``ForceCommand internal-sftp``, chroots) and hashes exactly the file the SFTP
server wrote, at the price of downloading each file once.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import posixpath
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import paramiko

from ..errors import DeliveryError, TaskCancelled
from .base import (
    CHUNK_BYTES,
    DeliveryFile,
    DeliveryProgress,
    DestinationSpec,
    FileReceipt,
    ProgressCallback,
    hash_prefix,
    iter_chunks,
    scrub,
)
from .sshlogin import SshLogin, connect

logger = logging.getLogger(__name__)

# Read-back requests in flight at once (32 KiB each): bounds memory while hiding latency.
READ_AHEAD_REQUESTS = 64
READ_WINDOW_BYTES = 8 * CHUNK_BYTES
WINDOW_BYTES = 16 * CHUNK_BYTES
_NOT_RETRYABLE = (errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EROFS)


class SftpDestination:
    """A directory on an SFTP server, reached over a verified SSH connection."""

    def __init__(self, spec: DestinationSpec, login: SshLogin) -> None:
        self.spec = spec
        self.url = spec.url
        self._login = login
        self._client = connect(spec, login, self.url)
        try:
            self._sftp = self._open_sftp()
            self.directory = self._make_directory(spec.path)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise self._error(exc, "opening the remote directory") from None

    def _open_sftp(self) -> paramiko.SFTPClient:
        transport = self._client.get_transport()
        if transport is None:
            raise EOFError("the SSH connection closed")
        # A wider channel window than paramiko's default keeps more writes in flight.
        sftp = paramiko.SFTPClient.from_transport(transport, window_size=WINDOW_BYTES)
        if sftp is None:
            raise EOFError("the SFTP subsystem could not be opened")
        return sftp

    def _make_directory(self, path: str) -> str:
        """Create the remote directory (and its parents) when missing; ``/~/x`` is HOME/x."""
        if path == "/~" or path.startswith("/~/"):
            path = posixpath.join(self._sftp.normalize("."), path[3:])
        current = "/"
        for step in [part for part in path.split("/") if part]:
            current = posixpath.join(current, step)
            try:
                self._sftp.stat(current)
            except FileNotFoundError:
                self._sftp.mkdir(current)
        return path

    def _remote(self, name: str) -> str:
        return posixpath.join(self.directory, name)

    def put(self, item: DeliveryFile, progress: ProgressCallback | None) -> FileReceipt:
        final = self._remote(item.name)
        temp = self._remote(f".{item.name}.part")
        try:
            offset, remote_hash, local_hash = self._resume_point(temp, item)
            self._upload(item, temp, offset, local_hash, progress)
            if local_hash.hexdigest() != item.sha256:
                self._sftp.remove(temp)
                raise DeliveryError(
                    f"local file {item.path} no longer matches its manifest (sha256 "
                    f"{local_hash.hexdigest()}, expected {item.sha256}); not delivered",
                    destination=self.url,
                    file=item.name,
                )
            size = self._sftp.stat(temp).st_size or 0
            digest = self._hash_remote(temp, offset, item.size_bytes, remote_hash).hexdigest()
            if size != item.size_bytes or digest != item.sha256:
                self._sftp.remove(temp)
                raise DeliveryError(
                    f"{item.name} arrived at {self.url} with {size} bytes, sha256 {digest} "
                    f"(expected {item.size_bytes} bytes, sha256 {item.sha256}); removed, will "
                    "retry",
                    destination=self.url,
                    file=item.name,
                    retryable=True,
                )
            self._rename(temp, final)
        except TaskCancelled:
            self._discard(temp)
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._error(exc, f"delivering {item.name}") from None
        return FileReceipt(item.name, final, item.size_bytes, digest, offset)

    def _discard(self, temp: str) -> None:
        """Remove a temporary file after a cancel; a failure here only leaves it for later."""
        try:
            self._sftp.remove(temp)
        except (OSError, EOFError, paramiko.SSHException):
            logger.warning("could not remove %s at %s after a cancel", temp, self.url)

    def _resume_point(self, temp: str, item: DeliveryFile) -> tuple[int, Any, Any]:
        """Where the upload starts, with the remote and local SHA-256 of what precedes it."""
        fresh = (0, hashlib.sha256(), hashlib.sha256())
        try:
            size = self._sftp.stat(temp).st_size or 0
        except FileNotFoundError:
            return fresh
        if size == 0 or size > item.size_bytes:
            return fresh
        remote = self._hash_remote(temp, 0, size, hashlib.sha256())
        local = hash_prefix(item.path, size)
        if remote.digest() != local.digest():
            logger.info(
                "delivery %s: temporary file at %s is not a prefix of the export; starting over",
                item.name, self.url,
            )  # fmt: skip
            return fresh
        logger.info("delivery %s: resuming at %d of %d bytes", item.name, size, item.size_bytes)
        return size, remote, local

    def _upload(
        self,
        item: DeliveryFile,
        temp: str,
        offset: int,
        local_hash: Any,
        progress: ProgressCallback | None,
    ) -> None:
        # "w" truncates what an earlier attempt left; "r+" keeps the verified prefix.
        mode = "r+b" if offset else "wb"
        done = offset
        with self._sftp.open(temp, mode) as remote:
            remote.set_pipelined(True)
            remote.seek(offset)
            for chunk in iter_chunks(item.path, offset):
                remote.write(chunk)
                local_hash.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(DeliveryProgress(item.name, done, item.size_bytes, offset))

    def _hash_remote(self, path: str, start: int, end: int, digest: Any) -> Any:
        """Read ``[start, end)`` of a remote file back into ``digest``, window by window."""
        with self._sftp.open(path, "rb") as remote:
            position = start
            while position < end:
                window = min(READ_WINDOW_BYTES, end - position)
                steps = [
                    (offset, min(CHUNK_BYTES, position + window - offset))
                    for offset in range(position, position + window, CHUNK_BYTES)
                ]
                for block in remote.readv(steps, READ_AHEAD_REQUESTS):
                    if not block:
                        return digest
                    digest.update(block)
                position += window
        return digest

    def _rename(self, temp: str, final: str) -> None:
        try:
            self._sftp.posix_rename(temp, final)
        except OSError as exc:
            if exc.errno in _NOT_RETRYABLE:
                raise
            # A server without posix-rename: plain SFTP rename refuses an existing target,
            # so the old file goes first (a short window in which the name is absent).
            try:
                self._sftp.remove(final)
            except FileNotFoundError:
                pass
            self._sftp.rename(temp, final)

    def names(self) -> set[str]:
        try:
            return set(self._sftp.listdir(self.directory))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._error(exc, "listing the remote directory") from None

    def read_text(self, name: str, limit_bytes: int) -> str | None:
        try:
            with self._sftp.open(self._remote(name), "rb") as remote:
                data: bytes = remote.read(limit_bytes)
        except FileNotFoundError:
            return None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._error(exc, f"reading {name}") from None
        return data.decode("utf-8", "replace")

    def sums_lock(self) -> AbstractContextManager[None]:
        # SFTP has no lock; two deliveries into one directory at once may drop each
        # other's SHA256SUMS lines (docs/delivery.md, Limits).
        return nullcontext()

    def remove(self, name: str) -> None:
        try:
            self._sftp.remove(self._remote(name))
        except FileNotFoundError:
            pass
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._error(exc, f"removing {name}") from None

    def _error(self, exc: BaseException, action: str) -> DeliveryError:
        if isinstance(exc, DeliveryError):
            return exc
        transport = self._client.get_transport()
        dropped = transport is None or not transport.is_active()
        code = exc.errno if isinstance(exc, OSError) else None
        if code in _NOT_RETRYABLE and not dropped:
            why, retryable = errno.errorcode.get(code or 0, "error") + f" ({exc})", False
        else:
            why, retryable = "the connection was lost" if dropped else str(exc), True
        secrets: tuple[str, ...] = ()
        if self._login.passphrase is not None:
            secrets = (self._login.passphrase.reveal().decode("utf-8", "replace"),)
        return DeliveryError(
            f"{action} at {self.url} failed: {scrub(why, secrets) or type(exc).__name__}"
            + ("; will retry" if retryable else ""),
            destination=self.url,
            retryable=retryable,
        )

    def close(self) -> None:
        self._client.close()
