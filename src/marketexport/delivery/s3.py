"""S3 destination: multipart uploads with a SHA-256 per part, completed after checking.

Every file, small or large, goes up as a multipart upload created with
``ChecksumAlgorithm='SHA256'``: each part carries its SHA-256, the parts the store lists are
compared with the local ones (size and SHA-256, or the MD5 ETag where a store reports no
checksum), and only then is the upload completed, which is the moment the key appears. An
upload that an interrupted delivery left open is found with ``list_multipart_uploads`` and
its parts that still match are kept: the delivery resumes instead of starting over. Other
open uploads for the same key are aborted, so a retry never leaves a second copy.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import DeliveryError, TaskCancelled
from .base import DeliveryFile, DeliveryProgress, DestinationSpec, FileReceipt, ProgressCallback
from .base import scrub as scrub_text
from .s3login import S3Login

logger = logging.getLogger(__name__)

PART_BYTES = 8 << 20
MAX_PARTS = 10_000
# Errors that may pass; NoSuchUpload too, since the next attempt starts a new upload.
_RETRY_CODES = {
    "RequestTimeout",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "NoSuchUpload",
}


@dataclass(frozen=True)
class Part:
    """One planned part: its number and byte range in the local file."""

    number: int
    offset: int
    length: int


class PartSum(NamedTuple):
    """A part with the SHA-256 (base64, as S3 writes it) and MD5 of its local bytes."""

    part: Part
    sha256_b64: str
    md5_hex: str


def plan_parts(size_bytes: int, part_bytes: int = PART_BYTES) -> list[Part]:
    """Split a file into parts; the size grows past ``part_bytes`` only beyond 10,000 parts."""
    mib = 1 << 20
    part_bytes = max(part_bytes, -(-size_bytes // MAX_PARTS // mib) * mib)
    if size_bytes == 0:
        return [Part(1, 0, 0)]
    return [
        Part(i + 1, offset, min(part_bytes, size_bytes - offset))
        for i, offset in enumerate(range(0, size_bytes, part_bytes))
    ]


def iter_parts(item: DeliveryFile, parts: list[Part]) -> Iterator[tuple[Part, bytes]]:
    """Each part's bytes, read one part at a time (memory stays at one part)."""
    with open(item.path, "rb") as handle:
        for part in parts:
            handle.seek(part.offset)
            yield part, handle.read(part.length)


def part_matches(listed: dict[str, Any] | None, part: Part, sha_b64: str, md5_hex: str) -> bool:
    """True when a part the store lists has the local part's size and checksum."""
    if listed is None or listed.get("Size") != part.length:
        return False
    if listed.get("ChecksumSHA256"):
        return bool(listed["ChecksumSHA256"] == sha_b64)
    return bool(str(listed.get("ETag", "")).strip('"') == md5_hex)


class S3Destination:
    """A bucket and key prefix on S3 or an S3-compatible store."""

    def __init__(
        self, spec: DestinationSpec, client: Any, login: S3Login, part_bytes: int = PART_BYTES
    ) -> None:
        self.spec = spec
        self.url = spec.url
        self.bucket = spec.bucket
        self.prefix = spec.path
        self.part_bytes = part_bytes
        self._client = client
        self._secrets = login.secrets()

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, item: DeliveryFile, progress: ProgressCallback | None) -> FileReceipt:
        key = self._key(item.name)
        parts = plan_parts(item.size_bytes, self.part_bytes)
        upload_id: str | None = None
        try:
            upload_id, listed = self._resume_point(key)
            if upload_id is None:
                upload_id = self._client.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    ChecksumAlgorithm="SHA256",
                    Metadata={"sha256": item.sha256},
                )["UploadId"]
            reused, sums = self._send_parts(item, key, upload_id, parts, listed, progress)
            self._complete(item, key, upload_id, sums)
        except TaskCancelled:
            if upload_id is not None:
                self._abort(key, upload_id)
            raise
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"delivering {item.name}") from None
        location = f"s3://{self.bucket}/{key}"
        return FileReceipt(item.name, location, item.size_bytes, item.sha256, reused)

    def _resume_point(self, key: str) -> tuple[str | None, dict[int, dict[str, Any]]]:
        """The open upload for ``key`` with the most parts (others aborted) and its parts."""
        found: list[tuple[int, str, dict[int, dict[str, Any]]]] = []
        pages = self._client.get_paginator("list_multipart_uploads")
        for page in pages.paginate(Bucket=self.bucket, Prefix=key):
            for upload in page.get("Uploads", []):
                if upload["Key"] == key:
                    listed = self._list_parts(key, upload["UploadId"])
                    stored = sum(int(p.get("Size", 0)) for p in listed.values())
                    found.append((stored, upload["UploadId"], listed))
        if not found:
            return None, {}
        found.sort(key=lambda entry: entry[0], reverse=True)
        for _, stale, _ in found[1:]:
            self._abort(key, stale)
        stored, upload_id, listed = found[0]
        logger.info("delivery %s: open upload found with %d bytes in parts", key, stored)
        return upload_id, listed

    def _list_parts(self, key: str, upload_id: str) -> dict[int, dict[str, Any]]:
        listed: dict[int, dict[str, Any]] = {}
        pages = self._client.get_paginator("list_parts")
        for page in pages.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                listed[int(part["PartNumber"])] = part
        return listed

    def _send_parts(
        self,
        item: DeliveryFile,
        key: str,
        upload_id: str,
        parts: list[Part],
        listed: dict[int, dict[str, Any]],
        progress: ProgressCallback | None,
    ) -> tuple[int, list[PartSum]]:
        """Upload every part the store lacks; return the bytes reused and each part's sums."""
        whole = hashlib.sha256()
        reused = done = 0
        sums: list[PartSum] = []
        for part, data in iter_parts(item, parts):
            whole.update(data)
            sha_b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
            md5_hex = hashlib.md5(data, usedforsecurity=False).hexdigest()
            sums.append(PartSum(part, sha_b64, md5_hex))
            if part_matches(listed.get(part.number), part, sha_b64, md5_hex):
                reused += part.length
            else:
                answer = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=part.number,
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=sha_b64,
                )
                if answer.get("ChecksumSHA256", sha_b64) != sha_b64:
                    raise DeliveryError(
                        f"part {part.number} of {item.name} arrived with a different SHA-256; "
                        "will retry",
                        destination=self.url,
                        retryable=True,
                    )
            done += part.length
            if progress is not None:
                progress(DeliveryProgress(item.name, done, item.size_bytes, reused))
        if whole.hexdigest() != item.sha256:
            self._abort(key, upload_id)
            raise DeliveryError(
                f"local file {item.path} no longer matches its manifest (sha256 "
                f"{whole.hexdigest()}, expected {item.sha256}); not delivered",
                destination=self.url,
                file=item.name,
            )
        return reused, sums

    def _complete(self, item: DeliveryFile, key: str, upload_id: str, sums: list[PartSum]) -> None:
        """Check every part as the store lists it against the local sums, then complete."""
        listed = self._list_parts(key, upload_id)
        chosen = []
        for part, sha_b64, md5_hex in sums:
            stored = listed.get(part.number)
            if stored is None or not part_matches(stored, part, sha_b64, md5_hex):
                raise DeliveryError(
                    f"part {part.number} of {item.name} as stored at {self.url} does not match "
                    "the local file (size or checksum); the upload stays open and the retry "
                    "sends that part again",
                    destination=self.url,
                    file=item.name,
                    retryable=True,
                )
            chosen.append(
                {"PartNumber": part.number, "ETag": stored["ETag"], "ChecksumSHA256": sha_b64}
            )
        self._client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": chosen}
        )
        size = self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        if size != item.size_bytes:
            raise DeliveryError(
                f"s3://{self.bucket}/{key} has {size} bytes after completion, expected "
                f"{item.size_bytes}; will retry",
                destination=self.url,
                file=item.name,
                retryable=True,
            )

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("could not abort an open upload of %s: %s", key, type(exc).__name__)

    def names(self) -> set[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        found: set[str] = set()
        try:
            pages = self._client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=start, Delimiter="/"):
                found.update(item["Key"][len(start) :] for item in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, "listing the prefix") from None
        return found

    def read_text(self, name: str, limit_bytes: int) -> str | None:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            data: bytes = answer["Body"].read(limit_bytes)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, f"reading {name}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"reading {name}") from None
        return data.decode("utf-8", "replace")

    def sums_lock(self) -> AbstractContextManager[None]:
        # S3 has no lock; see docs/delivery.md, Limits.
        return nullcontext()

    def remove(self, name: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"removing {name}") from None

    def _error(self, exc: BaseException, action: str) -> DeliveryError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(error.get("Code", "unknown"))
            why = f"{code}: {error.get('Message', '')}".rstrip(": ")
            retryable = status >= 500 or code in _RETRY_CODES
        elif isinstance(exc, NoCredentialsError | PartialCredentialsError):
            why, retryable = "the S3 credentials are missing or incomplete", False
        elif isinstance(exc, BotoConnectionError | HTTPClientError):
            # The library's message holds the full request URL; only the cause is kept.
            why, retryable = "the connection to the S3 endpoint failed", True
        else:
            why, retryable = type(exc).__name__, False
        return DeliveryError(
            f"{action} at {self.url} failed: {scrub_text(why, self._secrets)}"
            + ("; will retry" if retryable else ""),
            destination=self.url,
            retryable=retryable,
        )

    def close(self) -> None:
        self._client.close()
