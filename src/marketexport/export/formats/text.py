"""Helpers shared by the line-oriented text writers (CSV, JSON)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from ..render import joined_bytes

_JSON_UNSAFE = r'["\\\x00-\x1f]'


def csv_quote(column: pa.Array) -> pa.Array:
    """RFC 4180 quoting for the values that need it; empty strings become ``""``."""
    if not any_in_text(column, r'[",\r\n]') and not _has_empty(column):
        return column
    needs = pc.or_(pc.match_substring_regex(column, r'[",\r\n]'), pc.equal(column, ""))
    if not pc.any(needs).as_py():
        return column
    doubled = pc.replace_substring(column, '"', '""')
    quoted = pc.binary_join_element_wise('"', doubled, '"', "")
    return pc.if_else(needs, quoted, column)


def any_in_text(column: pa.Array, pattern: str) -> bool:
    """Whether ``pattern`` (a character class) occurs anywhere in the column's values.

    One regex pass over the whole data buffer instead of one per value: market data's text
    columns are short and almost never need quotes, and this is their common case.
    """
    if column.type != pa.string():
        return bool(len(column)) and pc.any(pc.match_substring_regex(column, pattern)).as_py()
    text = joined_bytes(column)
    if not len(text):
        return False
    span = pa.py_buffer((0).to_bytes(4, "little") + len(text).to_bytes(4, "little"))
    whole = pa.Array.from_buffers(pa.string(), 1, [None, span, pa.py_buffer(text)])
    return bool(pc.any(pc.match_substring_regex(whole, pattern)).as_py())


def _has_empty(column: pa.Array) -> bool:
    lengths = pc.min(pc.binary_length(column)).as_py()
    return lengths == 0


def json_string(column: pa.Array) -> pa.Array:
    """JSON string literals for a text column (nulls stay null)."""
    if not pc.any(pc.match_substring_regex(column, _JSON_UNSAFE)).as_py():
        return pc.binary_join_element_wise('"', column, '"', "")
    # Escapes are rare in market data; json.dumps is the reference for them.
    values = column.to_pylist()
    return pa.array(
        [json.dumps(v, ensure_ascii=False) if v is not None else None for v in values],
        pa.string(),
    )
