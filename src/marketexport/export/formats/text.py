"""Helpers shared by the line-oriented text writers (CSV, JSON)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

_JSON_UNSAFE = r'["\\\x00-\x1f]'


def csv_quote(column: pa.Array) -> pa.Array:
    """RFC 4180 quoting for the values that need it; empty strings become ``""``."""
    needs = pc.or_(pc.match_substring_regex(column, r'[",\r\n]'), pc.equal(column, ""))
    if not pc.any(needs).as_py():
        return column
    doubled = pc.replace_substring(column, '"', '""')
    quoted = pc.binary_join_element_wise('"', doubled, '"', "")
    return pc.if_else(needs, quoted, column)


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
