"""Text in XML, column-wise: markup escaping, characters XML 1.0 cannot carry, row assembly.

Shared by the xlsx and XML writers. A column is checked once, on its raw bytes, for
anything that needs work (``&``, ``<``, ``>``, control characters, U+FFFE/U+FFFF and, for
xlsx, a literal ``_xHHHH_``); a clean column, by far the usual case, costs one scan.
Values that need a format's own escape are rare, so that escape runs in Python on those
values alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

# Characters XML 1.0 cannot carry (its Char production), plus CR: CR is allowed, but every
# XML parser turns it into LF (end-of-line handling), so it needs an escape to survive.
# The bytes that may start one of them or markup: deleting them is the fastest test for
# "is there anything to do" (U+FFFE and U+FFFF start with 0xEF; a literal _xHHHH_ with _).
_MARKUP_BYTES = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), ord("&"), ord("<"), ord(">")])
_SPECIAL_BYTES = _MARKUP_BYTES + b"\xef"
_XSTRING_BYTES = _SPECIAL_BYTES + b"_"
ILLEGAL_PATTERN = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
ILLEGAL_OR_CR_PATTERN = r"[\x00-\x08\x0B-\x0D\x0E-\x1F\x{FFFE}\x{FFFF}]"


def value_bytes(column: pa.Array) -> memoryview:
    """The bytes of every value of a string array, without a copy."""
    if len(column) == 0 or column.buffers()[2] is None:
        return memoryview(b"")
    width = 8 if pa.types.is_large_string(column.type) else 4
    raw_offsets = memoryview(column.buffers()[1]).cast("B")
    start_at = column.offset * width
    end_at = (column.offset + len(column)) * width
    first = int.from_bytes(raw_offsets[start_at : start_at + width], "little")
    last = int.from_bytes(raw_offsets[end_at : end_at + width], "little")
    return memoryview(column.buffers()[2]).cast("B")[first:last]


def needs_escaping(column: pa.Array, underscore: bool = False) -> bool:
    """Whether any value may hold markup or a character to escape (or ``_`` if asked).

    False means the column can be written as it is; True that the exact checks must run.
    """
    raw = bytes(value_bytes(column))
    special = _XSTRING_BYTES if underscore else _SPECIAL_BYTES
    return len(raw.translate(None, special)) != len(raw)


def constant_text(column: pa.Array) -> str | None:
    """The value of a string column whose values are all the same (and not null), else None.

    Market data repeats itself (one exchange, one symbol per batch): such a column can go
    into the row template as a constant and costs nothing per row.
    """
    if len(column) == 0 or column.null_count:
        return None
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low if low == high else None


def escape_markup(column: pa.Array) -> pa.Array:
    """``&``, ``<`` and ``>`` as entity references (text content, not attributes)."""
    column = pc.replace_substring(column, "&", "&amp;")
    column = pc.replace_substring(column, "<", "&lt;")
    return pc.replace_substring(column, ">", "&gt;")


def rewrite_matching(
    column: pa.Array, pattern: str, rewrite: Callable[[str], str]
) -> tuple[pa.Array, pa.Array | None]:
    """Apply ``rewrite`` to the values matching ``pattern`` (RE2 syntax) alone.

    Returns the new column and the mask of rewritten values (None when none matched).
    """
    mask = pc.fill_null(pc.match_substring_regex(column, pattern), False)
    if not pc.any(mask).as_py():
        return column, None
    chosen = pc.filter(column, mask).to_pylist()
    rewritten = pa.array([rewrite(value) for value in chosen], pa.string())
    return pc.replace_with_mask(column, mask, rewritten), mask


def assemble(pieces: Sequence[str | pa.Array], rows: int) -> pa.Array:
    """Join constant and per-row pieces into one string per row.

    Adjacent constants are merged first: Arrow's element-wise join costs about the same
    for each argument, whatever its length.
    """
    merged: list[str | pa.Array] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + piece
        elif not (isinstance(piece, str) and piece == ""):
            merged.append(piece)
    if not any(isinstance(piece, pa.Array) for piece in merged):
        text = "".join(piece for piece in merged if isinstance(piece, str))
        return pa.array([text] * rows, pa.string())
    return pc.binary_join_element_wise(*merged, "")
