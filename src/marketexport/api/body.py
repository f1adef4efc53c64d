"""Request bodies of the HTTP API, validated by the same code as the CLI's flags."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import RequestError
from ..request import ExportRequest, build_request
from ..tasks.model import MAX_PRIORITY, MIN_PRIORITY

_AGE_RECIPIENT = re.compile(r"^age1[0-9a-z]{20,100}$")


class EncryptionBody(BaseModel):
    """Encryption with a key that lives on the server: a key name, or age recipients."""

    model_config = ConfigDict(extra="forbid")

    scheme: str = Field(max_length=32)
    key: str | None = Field(default=None, max_length=64)
    recipients: list[str] = Field(default_factory=list, max_length=16)


class ExportBody(BaseModel):
    """An export request: the same fields as ``marketexport export``'s options."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(max_length=64)
    format: str = Field(max_length=16)
    compression: str = Field(default="none", max_length=16)
    exchanges: list[str] = Field(default_factory=list, max_length=64)
    symbols: list[str] = Field(default_factory=list, max_length=256)
    start: str | None = Field(default=None, max_length=64)
    end: str | None = Field(default=None, max_length=64)
    where: list[str] = Field(default_factory=list, max_length=32)
    columns: list[str] | None = Field(default=None, max_length=64)
    csv_safe_for_spreadsheets: bool = False
    encryption: EncryptionBody | None = None
    destination: str | None = Field(default=None, max_length=500)
    priority: int = Field(default=0, ge=MIN_PRIORITY, le=MAX_PRIORITY)

    def to_request(self) -> ExportRequest:
        options: dict[str, Any] = {}
        if self.csv_safe_for_spreadsheets:
            options["csv_safe_for_spreadsheets"] = True
        encryption = None
        if self.encryption is not None:
            for recipient in self.encryption.recipients:
                if not _AGE_RECIPIENT.match(recipient):
                    raise RequestError(
                        f"invalid recipient {recipient!r} (over the API, recipients are age "
                        "public keys 'age1...'; key files stay on the server)",
                        recipient=recipient,
                    )
            encryption = {
                "scheme": self.encryption.scheme,
                "key": self.encryption.key,
                "recipients": list(self.encryption.recipients),
            }
        if self.destination is not None and not self.destination.startswith(("sftp://", "s3://")):
            # A directory would be a path on the server: over the API only remote ones.
            raise RequestError(
                f"invalid destination {self.destination!r} (over the API: sftp://user@host/path "
                "or s3://bucket/prefix; local files stay in the server's export directory)",
                destination=self.destination,
            )
        return build_request(
            dataset=self.dataset,
            format=self.format,
            compression=self.compression,
            exchanges=self.exchanges,
            symbols=self.symbols,
            start=self.start,
            end=self.end,
            where=self.where,
            columns=self.columns,
            options=options,
            encryption=encryption,
            destination=self.destination,
        )
