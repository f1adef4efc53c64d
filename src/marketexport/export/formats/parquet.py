"""Parquet: typed columns (decimal128(38, 22), timestamp with UTC), one row group per batch.

The export's codec goes inside the file as Parquet's own column compression (``zlib`` maps
to Parquet's gzip); the file keeps the plain ``.parquet`` name.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..compression import check_codec
from .base import FormatSpec, WriterContext
from .readback import summarize_parquet


class _Collector:
    """A write-only file object that hands back what the Parquet writer wrote."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class ParquetWriter:
    """Streams row groups into one Parquet file."""

    def __init__(self, context: WriterContext) -> None:
        codec = check_codec(context.compression).parquet_name
        self._out = _Collector()
        self._writer = pq.ParquetWriter(
            pa.PythonFile(self._out, mode="w"),
            context.schema,
            compression=codec,
            use_dictionary=["exchange", "symbol", "timeframe", "price_type", "side"],
            write_statistics=True,
        )

    def header(self) -> bytes:
        return self._out.drain()

    def encode(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch

    def write(self, encoded: pa.RecordBatch) -> bytes:
        if encoded.num_rows:
            self._writer.write_batch(encoded)
        return self._out.drain()

    def footer(self) -> bytes:
        self._writer.close()
        return self._out.drain()

    def notes(self) -> dict[str, Any]:
        return {}


PARQUET = FormatSpec(
    summarize=summarize_parquet,
    name="parquet",
    extension=".parquet",
    factory=ParquetWriter,
    binary=True,
    compresses_inside=True,
    parallel=False,
)
