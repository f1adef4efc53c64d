"""The format registry: one module per format, registered here."""

from __future__ import annotations

from ...errors import RequestError
from .base import FormatSpec, FormatWriter, WriterContext
from .csv import CSV
from .json import JSON, JSONL
from .parquet import PARQUET
from .xlsx import XLSX
from .xml import XML

__all__ = ["FORMATS", "FormatSpec", "FormatWriter", "WriterContext", "get_format"]

FORMATS: dict[str, FormatSpec] = {
    spec.name: spec for spec in (CSV, JSON, JSONL, PARQUET, XLSX, XML)
}


def get_format(name: str) -> FormatSpec:
    """Return the format called ``name``, or raise naming the valid ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise RequestError(
            f"unknown format {name!r} (expected one of: {', '.join(FORMATS)})", format=name
        ) from None
