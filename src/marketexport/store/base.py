"""The Store interface: where rows come from and go to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from ..datasets import Dataset
from ..request import Filter


@dataclass(frozen=True)
class ScanStats:
    """What the store knows about a selection before it is read."""

    rows: int
    first_ns: int | None
    last_ns: int | None
    time_unit: str  # the coarsest of "ms", "us", "ns" that is exact for every row


@dataclass(frozen=True)
class InsertResult:
    """Rows offered to the store and rows it added (the rest were duplicates)."""

    rows_read: int
    rows_added: int

    @property
    def rows_skipped(self) -> int:
        return self.rows_read - self.rows_added


class BatchStream(Protocol):
    """An iterator of record batches with a schema, closed after use."""

    schema: pa.Schema

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...
    def __next__(self) -> pa.RecordBatch: ...
    def close(self) -> None: ...


class Store(Protocol):
    """A source of Arrow batches for a dataset and a sink for imported rows."""

    def stats(self, spec: Dataset, filters: list[Filter]) -> ScanStats:
        """Count the rows a scan would return, and their time bounds and unit."""
        ...

    def distinct_values(self, spec: Dataset, column: str, filters: list[Filter]) -> list[str]:
        """The distinct values of a text column among the selected rows, sorted."""
        ...

    def scan(
        self, spec: Dataset, filters: list[Filter], columns: list[str], batch_rows: int
    ) -> BatchStream:
        """Stream the selected rows, ordered by time then key, in batches."""
        ...

    def insert(
        self, parts: Iterable[tuple[Dataset, Iterable[pa.RecordBatch]]]
    ) -> dict[str, InsertResult]:
        """Add rows of one or more datasets in one transaction, keyed by dataset name.

        Rows whose key exists already (or repeats within the input) are skipped.
        """
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
