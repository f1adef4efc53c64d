"""What every format writer is and how it describes itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyarrow as pa

from ...datasets import Column
from ...errors import RequestError


@dataclass(frozen=True)
class WriterContext:
    """What a writer knows about the export it writes."""

    dataset: str
    columns: tuple[Column, ...]
    schema: pa.Schema  # the export schema: times as timestamp[unit, tz=UTC]
    time_unit: str
    compression: str  # for formats that compress inside the file (Parquet)
    options: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    threads: int = 1


class FormatWriter(Protocol):
    """Turns Arrow batches into the bytes of one file.

    ``encode`` may run in worker threads at once when the spec says ``parallel``; ``write``
    receives what ``encode`` returned, in batch order, on one thread.

    A writer whose rows are lines of text may also offer ``line_layout() -> str | None``
    (the layout's name, e.g. ``csv``) and ``encode_lines(batch)``: a store that renders
    that layout itself (``scan_lines``) then hands over batches of one string column of
    finished lines, and ``encode_lines`` takes the place of ``encode``.
    """

    def header(self) -> bytes: ...
    def encode(self, batch: pa.RecordBatch) -> Any: ...
    def write(self, encoded: Any) -> bytes: ...
    def footer(self) -> bytes: ...
    def notes(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FormatSpec:
    """A format: name, file extension, and how its writer behaves."""

    name: str
    extension: str
    factory: Callable[[WriterContext], FormatWriter]
    binary: bool = False
    compresses_inside: bool = False  # the codec goes inside the file, not around it
    parallel: bool = True
    options: tuple[str, ...] = ()
    # The codecs this format takes (None: every one) and, when limited, why.
    compressions: tuple[str, ...] | None = None
    compressions_note: str = ""
    # Reads a payload back for `verify`: (stream, time column, plain file path or None)
    # -> {"rows": n, "first_time": iso, "last_time": iso}.
    summarize: Callable[[BinaryIO, str | None, Path | None], dict[str, Any]] | None = None

    def check_compression(self, compression: str) -> None:
        """Refuse a codec this format cannot take, naming the ones it can."""
        if self.compressions is None or compression in self.compressions:
            return
        raise RequestError(
            f"compression {compression!r} does not apply to {self.name}: "
            f"{self.compressions_note} (expected: {', '.join(self.compressions)})",
            compression=compression,
        )

    def check_options(self, options: dict[str, Any]) -> None:
        for key in options:
            if key not in self.options:
                accepted = ", ".join(self.options) if self.options else "none"
                raise RequestError(
                    f"option {key!r} does not apply to format {self.name!r} "
                    f"(its options: {accepted})",
                    option=key,
                )
