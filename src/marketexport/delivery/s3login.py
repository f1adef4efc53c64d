"""S3 credentials and client: keys from the environment or the key directory, HTTPS only.

Keys come from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``)
in the environment, or else from ``<key_dir>/s3-credentials`` (the INI form of AWS's shared
credentials file, section ``[default]``, mode 0600). Nothing else is searched: no instance
metadata service is asked, so a delivery never reaches an address it was not given.
"""

from __future__ import annotations

import configparser
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, DeliveryError
from ..export.encryption.keys import Secret, read_private
from .base import is_loopback

CREDENTIALS_FILE = "s3-credentials"
CONNECT_TIMEOUT_S = 30
READ_TIMEOUT_S = 120


@dataclass(frozen=True)
class S3Login:
    """An access key pair (the secret half masked in every repr) and where it came from."""

    access_key_id: str
    secret_access_key: Secret
    session_token: Secret | None
    source: str

    def secrets(self) -> tuple[str, ...]:
        """The secret strings, for scrubbing third-party messages."""
        found = [self.secret_access_key.reveal().decode()]
        if self.session_token is not None:
            found.append(self.session_token.reveal().decode())
        return tuple(found)


def resolve_s3_login(key_dir: Path, environ: Mapping[str, str]) -> S3Login:
    """The S3 keys from the environment, else from ``<key_dir>/s3-credentials``."""
    key_id = environ.get("AWS_ACCESS_KEY_ID")
    secret = environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        token = environ.get("AWS_SESSION_TOKEN")
        return S3Login(
            key_id,
            Secret(secret.encode()),
            Secret(token.encode()) if token else None,
            "the environment",
        )
    path = key_dir / CREDENTIALS_FILE
    if not path.is_file():
        raise DeliveryError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
            f"environment, or write them to {path} (section [default], mode 0600)",
            key_dir=str(key_dir),
        )
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_private(path).decode("utf-8"), source=str(path))
        section = parser["default"]
        key_id = section["aws_access_key_id"].strip()
        secret = section["aws_secret_access_key"].strip()
    except (configparser.Error, KeyError, UnicodeDecodeError):
        # The parser's own message may quote a line of the file: it is not repeated here.
        raise DeliveryError(
            f"S3 credentials file {path} needs a [default] section with aws_access_key_id "
            "and aws_secret_access_key",
            path=str(path),
        ) from None
    token = section.get("aws_session_token", "").strip()
    return S3Login(
        key_id, Secret(secret.encode()), Secret(token.encode()) if token else None, str(path)
    )


def check_endpoint(endpoint: str | None, allow_http_loopback: bool) -> str | None:
    """The endpoint URL if it may be used: HTTPS, or HTTP to loopback when allowed."""
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    if parts.username or parts.password:
        raise ConfigError(
            "s3_endpoint must not carry credentials in its URL (keys come from the "
            "environment or the key directory)",
            setting="s3_endpoint",
        )
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return endpoint
    if parts.scheme == "http" and host:
        if not is_loopback(host):
            raise ConfigError(
                f"s3_endpoint {endpoint!r} is plain HTTP to a host that is not loopback; "
                "refused (use https://; HTTP is allowed only for 127.0.0.1, ::1 or localhost)",
                setting="s3_endpoint",
            )
        if not allow_http_loopback:
            raise ConfigError(
                f"s3_endpoint {endpoint!r} is plain HTTP; refused unless "
                "s3_allow_http_loopback = true (allowed for loopback endpoints only)",
                setting="s3_endpoint",
            )
        return endpoint
    raise ConfigError(
        f"invalid s3_endpoint {endpoint!r} (expected https://host[:port], or "
        "http://127.0.0.1:port with s3_allow_http_loopback = true)",
        setting="s3_endpoint",
    )


class _MaskSignedHeaders(logging.Filter):
    """Masks the Authorization header and session token in botocore's debug records.

    botocore logs each prepared request, and the canonical request it signs, at DEBUG;
    both would carry the signature, the access key id and a session token.
    """

    _HEADER = re.compile(
        r"((?:'|\b)(?:authorization|x-amz-security-token)(?:': b?'|:))[^'\n]*", re.IGNORECASE
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._HEADER.sub(r"\1***", message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_MASK = _MaskSignedHeaders()


def mask_botocore_logs() -> None:
    """Attach the mask to the botocore loggers that print requests (once)."""
    for name in ("botocore.endpoint", "botocore.auth", "botocore.httpsession"):
        target = logging.getLogger(name)
        if _MASK not in target.filters:
            target.addFilter(_MASK)


def make_client(settings: Any, login: S3Login) -> Any:
    """A boto3 S3 client for these settings; TLS certificates are always verified."""
    import boto3
    from botocore.config import Config

    mask_botocore_logs()

    endpoint = check_endpoint(settings.s3_endpoint, settings.s3_allow_http_loopback)
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        # Checksums are given explicitly (SHA-256 per part), so none is added implicitly.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session(
        aws_access_key_id=login.access_key_id,
        aws_secret_access_key=login.secret_access_key.reveal().decode(),
        aws_session_token=login.session_token.reveal().decode() if login.session_token else None,
        region_name=settings.s3_region,
    )
    return session.client("s3", endpoint_url=endpoint, config=config, verify=True)
