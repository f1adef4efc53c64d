"""Helpers for tests: decompress with each codec's own library, build sample tables."""

from __future__ import annotations

import gzip
import zlib
from decimal import Decimal
from pathlib import Path

import cramjam
import lz4.frame
import pyarrow as pa
import zstandard

from marketexport.datasets import Dataset


def decompress_with_own_library(path: Path, codec: str) -> bytes:
    """The file's payload, decompressed by the codec's reference library."""
    data = path.read_bytes()
    if codec == "none":
        return data
    if codec == "gzip":
        return gzip.decompress(data)
    if codec == "zlib":
        return zlib.decompress(data)
    if codec == "snappy":
        return bytes(cramjam.snappy.decompress(data))
    if codec == "lz4":
        return lz4.frame.decompress(data)
    if codec == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(codec)


def table_of(spec: Dataset, rows: list[dict[str, object]]) -> pa.Table:
    """A store-schema table from row dicts (missing columns null)."""
    columns = {c.name: [row.get(c.name) for row in rows] for c in spec.columns}
    arrays = []
    for column in spec.columns:
        values = columns[column.name]
        if column.kind == "decimal":
            values = [Decimal(str(v)) if v is not None else None for v in values]
        arrays.append(pa.array(values, column.arrow_type))
    return pa.Table.from_arrays(arrays, schema=spec.store_schema)
