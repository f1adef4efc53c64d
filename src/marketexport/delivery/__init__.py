"""Delivery: a finished export travels to its destination, atomically and verified.

:func:`deliver` sends the export file first, then the manifest (with its signature when
signed), then the destination's merged SHA256SUMS, last, as the sign that the export is
complete. Each file arrives under a temporary name and takes its final name only after its
size and SHA-256 match what the export recorded.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import DeliveryError, TaskCancelled
from ..export.encryption import KeyRing
from ..export.encryption.signing import load_signer
from ..export.manifest import SUMS_NAME
from ..export.pipeline import CancelToken, ExportResult
from .base import (
    FORMS,
    DeliveryFile,
    DeliveryProgress,
    DeliveryReceipt,
    Destination,
    DestinationSpec,
    FileReceipt,
    ProgressCallback,
    parse_destination,
    parse_sums,
    render_sums,
)

__all__ = [
    "FORMS",
    "DeliveryFile",
    "DeliveryProgress",
    "DeliveryReceipt",
    "Destination",
    "DestinationSpec",
    "FileReceipt",
    "deliver",
    "open_destination",
    "parse_destination",
]

logger = logging.getLogger(__name__)

SIGNATURE_SUFFIX = ".minisig"
# SHA256SUMS is read back whole before it is merged; a larger one is refused.
SUMS_LIMIT_BYTES = 16 << 20


def open_destination(
    destination: str | DestinationSpec, settings: Any, environ: Mapping[str, str]
) -> Destination:
    """Connect to a destination with the credentials of ``settings`` and ``environ``."""
    spec = parse_destination(destination) if isinstance(destination, str) else destination
    if spec.kind == "local":
        from .local import LocalDestination

        return LocalDestination(Path(spec.path))
    if spec.kind == "sftp":
        from .sftp import SftpDestination
        from .sshlogin import resolve_login

        return SftpDestination(spec, resolve_login(settings, environ))
    from .s3 import S3Destination
    from .s3login import make_client, resolve_s3_login

    login = resolve_s3_login(settings.key_path, environ)
    return S3Destination(spec, make_client(settings, login), login)


def _sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def export_files(result: ExportResult) -> list[DeliveryFile]:
    """The files of an export in delivery order: data, manifest signature, manifest."""
    sums = parse_sums(result.sums_path.read_text(encoding="utf-8"))
    data_name = result.path.name
    if sums.get(data_name, result.manifest.file_sha256) != result.manifest.file_sha256:
        raise DeliveryError(
            f"{result.sums_path} and the manifest disagree on the SHA-256 of {data_name}; "
            "not delivered (run marketexport verify)",
            file=data_name,
        )
    manifest_name = result.manifest_path.name
    if manifest_name not in sums:
        raise DeliveryError(
            f"{result.sums_path} has no line for {manifest_name}; not delivered",
            file=manifest_name,
        )
    files = [
        DeliveryFile(
            data_name, result.path, result.manifest.file_bytes, result.manifest.file_sha256
        )
    ]
    signature = result.manifest_path.with_name(manifest_name + SIGNATURE_SUFFIX)
    if signature.is_file():
        files.append(_local_file(signature))
    size = result.manifest_path.stat().st_size
    files.append(DeliveryFile(manifest_name, result.manifest_path, size, sums[manifest_name]))
    return files


def _local_file(path: Path) -> DeliveryFile:
    return DeliveryFile(path.name, path, path.stat().st_size, _sha256_of(path))


def _watch(progress: ProgressCallback | None, cancel: CancelToken | None) -> ProgressCallback:
    def watched(step: DeliveryProgress) -> None:
        if cancel is not None and cancel.is_cancelled():
            raise TaskCancelled(f"delivery of {step.name} cancelled", file=step.name)
        if progress is not None:
            progress(step)

    return watched


def deliver(
    result: ExportResult,
    destination: str | DestinationSpec,
    settings: Any,
    *,
    environ: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    keys: KeyRing | None = None,
) -> DeliveryReceipt:
    """Deliver an export's file, manifest and SHA256SUMS line to ``destination``.

    Credentials come from ``settings`` (the key directory), ``environ`` (default: the
    process environment) and the SSH agent. A retry after a failure resumes where the
    previous attempt stopped and replaces its temporary file.

    Raises:
        DeliveryError: naming the destination and file; ``retryable`` for dropped
            connections. Never holds a credential.
        TaskCancelled: ``cancel`` said so between chunks.
    """
    env = os.environ if environ is None else environ
    spec = parse_destination(destination) if isinstance(destination, str) else destination
    started = time.monotonic()
    receipt = DeliveryReceipt(spec.url)
    if spec.kind == "local" and Path(spec.path).resolve() == result.path.parent.resolve():
        return receipt
    files = export_files(result)
    logger.info("delivery of %s to %s started", result.path.name, spec.url)
    watched = _watch(progress, cancel)
    target = open_destination(spec, settings, env)
    try:
        for item in files:
            receipt.files.append(target.put(item, watched))
        receipt.files.extend(_deliver_sums(target, result, files, settings, env, keys, watched))
    except (DeliveryError, TaskCancelled) as exc:
        logger.warning("%s", exc)  # the error names the file, the destination and the cause
        raise
    finally:
        target.close()
    receipt.elapsed_s = time.monotonic() - started
    logger.info(
        "delivery of %s to %s succeeded files=%d bytes=%d resumed_bytes=%d elapsed_s=%.1f",
        result.path.name, spec.url, len(receipt.files),
        sum(item.size_bytes for item in receipt.files),
        sum(item.resumed_from for item in receipt.files), receipt.elapsed_s,
    )  # fmt: skip
    return receipt


def _deliver_sums(
    target: Destination,
    result: ExportResult,
    files: list[DeliveryFile],
    settings: Any,
    environ: Mapping[str, str],
    keys: KeyRing | None,
    progress: ProgressCallback,
) -> list[FileReceipt]:
    """Merge this export's lines into the destination's SHA256SUMS and send it, last."""
    signer = None
    if result.manifest.signed_by:
        name = result.manifest.request.get("sign_key") or settings.signing_key
        signer = load_signer(name, keys or KeyRing.from_settings(settings, environ))
    arrived: list[FileReceipt] = []
    with target.sums_lock(), tempfile.TemporaryDirectory(prefix="marketexport-sums-") as tmp:
        present = target.names()
        current = parse_sums(target.read_text(SUMS_NAME, SUMS_LIMIT_BYTES) or "")
        merged = {name: digest for name, digest in current.items() if name in present}
        for item in files:
            if not item.name.endswith(SIGNATURE_SUFFIX):
                merged[item.name] = item.sha256
        sums_path = Path(tmp) / SUMS_NAME
        sums_path.write_bytes(render_sums(merged))
        if signer is not None:
            arrived.append(target.put(_local_file(signer(sums_path)), progress))
        elif SUMS_NAME + SIGNATURE_SUFFIX in present:
            # A signature left by an earlier signed export would no longer match.
            target.remove(SUMS_NAME + SIGNATURE_SUFFIX)
        arrived.append(target.put(_local_file(sums_path), progress))
    return arrived
