"""S3 delivery against moto's S3-protocol server on 127.0.0.1 (HTTP allowed explicitly)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from marketexport.delivery import DeliveryProgress, deliver
from marketexport.delivery.s3 import PART_BYTES
from marketexport.errors import DeliveryError
from marketexport.export.formats import FORMATS
from marketexport.export.pipeline import ExportResult
from marketexport.export.verify import verify_export
from tests.delivery.conftest import (
    S3_ENV,
    Exports,
    KeyDir,
    S3Server,
    SecretWatch,
    delivery_settings,
)
from tests.delivery.test_sftp import sha256sum_check


def s3_settings(tmp_path: Path, key_dir: KeyDir, server: S3Server) -> Any:
    return delivery_settings(
        tmp_path, key_dir.path, s3_endpoint=server.endpoint, s3_allow_http_loopback=True
    )


def has_object(server: S3Server, bucket: str, key: str) -> bool:
    client = server.client()
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "404"
        return False
    finally:
        client.close()
    return True


@pytest.mark.slow
def test_every_format_arrives_verified(
    s3_server: S3Server,
    bucket: str,
    key_dir: KeyDir,
    exports: Exports,
    watch: SecretWatch,
    tmp_path: Path,
) -> None:
    settings = s3_settings(tmp_path, key_dir, s3_server)
    url = f"s3://{bucket}/daily/ohlcv"
    results = [exports.run(fmt, rows=4_000, destination=url) for fmt in FORMATS]

    receipts = [deliver(r, url, settings, environ=S3_ENV) for r in results]
    names = s3_server.download(bucket, "daily/ohlcv", tmp_path / "downloaded")

    expected = sorted(n for r in results for n in (r.path.name, r.manifest_path.name))
    assert names == sorted([*expected, "SHA256SUMS"])
    assert sha256sum_check(tmp_path / "downloaded") == expected
    assert s3_server.open_uploads(bucket) == []
    for result, receipt in zip(results, receipts, strict=True):
        watch.add(receipt.to_dict(), result.manifest.to_dict())
        copy = tmp_path / "downloaded" / result.path.name
        assert copy.read_bytes() == result.path.read_bytes()
        assert verify_export(copy).ok
        assert receipt.files[0].location == f"{url}/{result.path.name}"


@pytest.mark.slow
def test_interrupted_upload_leaves_no_object_and_retry_reuses_parts(
    s3_server: S3Server,
    bucket: str,
    key_dir: KeyDir,
    big_export: ExportResult,
    watch: SecretWatch,
    tmp_path: Path,
) -> None:
    """The server goes away after two parts: no object; the retry keeps the part that still
    matches and sends the rest."""
    settings = s3_settings(tmp_path, key_dir, s3_server)
    url = f"s3://{bucket}/drop"
    key = f"drop/{big_export.path.name}"
    cut_at = 2 * PART_BYTES

    def cut(step: DeliveryProgress) -> None:
        if step.bytes_done >= cut_at and s3_server.server is not None:
            s3_server.stop()

    with pytest.raises(DeliveryError) as caught:
        deliver(big_export, url, settings, environ=S3_ENV, progress=cut)
    watch.add(caught.value, pickle.dumps(caught.value).decode("latin-1"))
    s3_server.start()
    uploads = s3_server.open_uploads(bucket)
    assert caught.value.retryable and "will retry" in str(caught.value)
    assert not has_object(s3_server, bucket, key)
    assert [upload["Key"] for upload in uploads] == [key]

    # Part 2 as stored is spoiled (same size, other bytes): it must be sent again. And a
    # stale upload of the same key (say, from a crash long ago) must not survive.
    client = s3_server.client()
    spoiled = b"x" * PART_BYTES
    upload_id = uploads[0]["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=spoiled)
    stale = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, UploadId=stale, PartNumber=1, Body=b"old")
    receipt = deliver(big_export, url, settings, environ=S3_ENV)
    watch.add(receipt.to_dict())
    metadata = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    client.close()

    assert receipt.files[0].resumed_from == PART_BYTES
    assert metadata["sha256"] == big_export.manifest.file_sha256
    assert s3_server.open_uploads(bucket) == []
    names = s3_server.download(bucket, "drop", tmp_path / "downloaded")
    assert names == sorted([big_export.path.name, big_export.manifest_path.name, "SHA256SUMS"])
    assert sha256sum_check(tmp_path / "downloaded") == sorted(
        [big_export.path.name, big_export.manifest_path.name]
    )


@pytest.mark.slow
def test_credentials_come_from_the_key_directory_when_not_in_the_environment(
    s3_server: S3Server,
    bucket: str,
    key_dir: KeyDir,
    exports: Exports,
    watch: SecretWatch,
    tmp_path: Path,
) -> None:
    settings = s3_settings(tmp_path, key_dir, s3_server)
    result = exports.run("json", rows=100)
    url = f"s3://{bucket}"

    with pytest.raises(DeliveryError) as missing:
        deliver(result, url, settings, environ={})
    credentials = key_dir.path / "s3-credentials"
    credentials.write_text(
        "[default]\n"
        f"aws_access_key_id = {S3_ENV['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {S3_ENV['AWS_SECRET_ACCESS_KEY']}\n"
    )
    credentials.chmod(0o600)
    receipt = deliver(result, url, settings, environ={})
    watch.add(missing.value, receipt.to_dict())

    assert "no S3 credentials" in str(missing.value) and not missing.value.retryable
    assert has_object(s3_server, bucket, result.path.name)
    assert has_object(s3_server, bucket, "SHA256SUMS")
