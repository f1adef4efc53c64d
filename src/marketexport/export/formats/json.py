"""JSON (one top-level array, written incrementally) and JSON Lines (one object per line).

Decimals are JSON numbers in plain notation, exact as stored (parse them with a decimal
parser, e.g. ``json.loads(text, parse_float=decimal.Decimal)``). Times are ISO 8601 UTC
strings. Ids are strings. Integers beyond 2**53 are strings, so that no reader rounds them.
Nulls are ``null``.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..render import MAX_SAFE_JSON_INT, joined_bytes, render_plain
from .base import FormatSpec, WriterContext
from .readback import summarize_json, summarize_jsonl
from .text import json_string


def _json_value(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return json_string(column)
    text = render_plain(column)
    if pa.types.is_timestamp(kind):
        return pc.binary_join_element_wise('"', text, '"', "")
    if pa.types.is_integer(kind):
        unsafe = pc.greater(pc.abs(column), MAX_SAFE_JSON_INT)
        if pc.any(unsafe).as_py():
            return pc.if_else(unsafe, pc.binary_join_element_wise('"', text, '"', ""), text)
    return text


class _JsonRows:
    """Renders each row as one JSON object; ``prefix`` and ``suffix`` frame it."""

    prefix = ""
    suffix = "\n"

    def __init__(self, context: WriterContext) -> None:
        self._context = context
        self._keys = [
            ("{" if i == 0 else ",") + json.dumps(c.name, ensure_ascii=False) + ":"
            for i, c in enumerate(context.columns)
        ]

    def encode(self, batch: pa.RecordBatch) -> bytes:
        parts: list[Any] = [self.prefix] if self.prefix else []
        for key, column in zip(self._keys, batch.columns, strict=True):
            parts.append(key)
            parts.append(pc.fill_null(_json_value(column), "null"))
        parts.append("}" + self.suffix)
        if batch.num_rows == 0:
            return b""
        lines = pc.binary_join_element_wise(*parts, "")
        return joined_bytes(lines)

    def header(self) -> bytes:
        return b""

    def write(self, encoded: bytes) -> bytes:
        return encoded

    def footer(self) -> bytes:
        return b""

    def notes(self) -> dict[str, Any]:
        return {}


class JsonLinesWriter(_JsonRows):
    """One JSON object per line."""


class JsonArrayWriter(_JsonRows):
    """One JSON array whose elements are written one line each, incrementally."""

    prefix = ",\n"
    suffix = ""

    def __init__(self, context: WriterContext) -> None:
        super().__init__(context)
        self._first = True

    def header(self) -> bytes:
        return b"["

    def write(self, encoded: bytes) -> bytes:
        if self._first and encoded:
            self._first = False
            return encoded[1:]  # the first element has no comma before it
        return encoded

    def footer(self) -> bytes:
        return b"\n]\n"


JSON = FormatSpec(name="json", extension=".json", factory=JsonArrayWriter, summarize=summarize_json)
JSONL = FormatSpec(
    name="jsonl", extension=".jsonl", factory=JsonLinesWriter, summarize=summarize_jsonl
)
