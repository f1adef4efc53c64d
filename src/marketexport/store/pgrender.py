"""Rows rendered by PostgreSQL itself into finished CSV lines: the store's CSV fast path.

A CSV export from PostgreSQL spends most of its time turning values into text: the server
writes each numeric as text, the client parses that into decimal128 and the CSV writer
formats it back. Asked for the line instead, the server writes every value once, in
exactly the bytes that export/render.py and the CSV writer produce:

- text and ids as they are; quoted per RFC 4180 only when they hold a comma, a quote, CR or
  LF, or are empty (an empty string is ``""``, a null an empty field);
- decimals through ``trim_scale``: numeric's text is plain notation, so trimmed it is
  ``0.00001234``, ``78189.2``, ``0``, never E-notation or trailing zeros;
- times through ``to_char`` as ISO 8601 UTC with ``Z`` and the fraction digits of the
  export's unit, the nanoseconds appended from the ``<time>_nanos`` companion;
- integers in digits; booleans as ``true``/``false``.

The driver then hands over one string per row, which the writer passes on as it is.
Values that the embedded store could not hold stop the export, as they do in the batch
scan: a decimal beyond decimal(38, 22), NaN or infinity is found in the lines by
:func:`find_decimal_misfit` (a regex pass on the client, cheaper there than a check of
every value on the server), and a time outside the 64-bit nanosecond range makes its row's
line NULL, after which :func:`misfit_sql` finds the value to name it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..datasets import DECIMAL_TYPE, Dataset
from ..errors import StoreError
from .pglayout import nanos_name
from .pgquery import BoundTable, SourceColumn, order_sql
from .pgread import misfit_error
from .sql import quote_ident

# The layouts this module renders; a writer names the one it wants.
LINE_LAYOUTS = ("csv",)
LINE_SCHEMA = pa.schema([pa.field("line", pa.string(), nullable=False)])
# trim_scale and min_scale came with PostgreSQL 13; older servers get the batch scan.
LINES_SINCE_VERSION = 130000
# Characters that make a CSV field need quotes (an empty field needs them too).
_NEEDS_QUOTES = r"""'[",\r\n]'"""
_INTEGER_DIGITS = DECIMAL_TYPE.precision - DECIMAL_TYPE.scale
# A decimal that does not fit has more digits in a row than any that does, or is NaN or
# infinity; _FITS is the exact rule for one value (empty: a null).
_SUSPECT = rf"[0-9]{{{_INTEGER_DIGITS + 1}}}|NaN|Infinity"
_FITS = rf"^(-?[0-9]{{1,{_INTEGER_DIGITS}}}(\.[0-9]{{1,{DECIMAL_TYPE.scale}}})?)?$"
_FRACTION = {"ms": ".MS", "us": ".US", "ns": ".US"}
# The first and last microsecond whose every nanosecond fits 64 bits (the embedded store's
# time range, 1677-09-21 to 2262-04-11).
_EPOCH = datetime(1970, 1, 1)
_FIRST_US, _LAST_US = -(2**63 // 1000), (2**63 - 1) // 1000 - 1


def line_sql(table: BoundTable, columns: list[str], time_unit: str, where: str) -> str:
    """The ordered select of one CSV line (with its ``\\n``) per row, NULL for a misfit row.

    ``time_unit`` must be exact for every selected time (the store's stats say which).
    """
    kinds = {name: table.spec.column(name).kind for name in columns}
    texts = [name for name in columns if kinds[name] in ("text", "id")]
    plain = _line(table, columns, time_unit, quoted=False)
    branches = []
    misfits = [condition for _, condition, _ in misfit_checks(table, columns)]
    if misfits:
        branches.append(f"WHEN {' OR '.join(misfits)} THEN NULL")
    if texts:
        branches.append(
            f"WHEN {_quoting_needed(table, texts)} "
            f"THEN {_line(table, columns, time_unit, quoted=True)}"
        )
    line = f"CASE {' '.join(branches)} ELSE {plain} END" if branches else plain
    return f"SELECT {line} AS line FROM {table.relation()} {where} {order_sql(table)}"


def _line(table: BoundTable, columns: list[str], time_unit: str, quoted: bool) -> str:
    fields = [_field(table, table.columns[name], time_unit, quoted) for name in columns]
    return f"concat_ws(',', {', '.join(fields)}) || E'\\n'"


def _field(table: BoundTable, column: SourceColumn, time_unit: str, quoted: bool) -> str:
    """One value's text; concat_ws drops NULL arguments, so a nullable one becomes ''."""
    name = quote_ident(column.name)
    kind = column.kind
    if kind in ("text", "id"):
        text = _quoted(name) if quoted else name
    elif kind == "decimal":
        text = f"trim_scale({name})"
    elif kind == "time":
        text = _iso_time(name, quote_ident(nanos_name(column.name)), time_unit)
    elif kind == "boolean":
        text = f"{name}::text"  # boolean's own output is t/f
    else:
        text = name
    if not _nullable(column):
        return text
    if kind in ("decimal", "integer"):
        text = f"{text}::text"
    return f"coalesce({text}, '')"


def _nullable(column: SourceColumn) -> bool:
    return column.source is None or not column.not_null


def _quoted(name: str) -> str:
    return (
        f"CASE WHEN {name} ~ {_NEEDS_QUOTES} OR {name} = '' "
        f"THEN '\"' || replace({name}, '\"', '\"\"') || '\"' ELSE {name} END"
    )


def _quoting_needed(table: BoundTable, texts: list[str]) -> str:
    """True when some text value of the row needs quotes: one regex over all of them."""
    parts = []
    for name in texts:
        quoted = quote_ident(name)
        parts.append(f"coalesce({quoted}, '')" if _nullable(table.columns[name]) else quoted)
    empty = " OR ".join(f"{quote_ident(name)} = ''" for name in texts)
    return f"({' || '.join(parts)}) ~ {_NEEDS_QUOTES} OR {empty}"


def _iso_time(name: str, nanos: str, time_unit: str) -> str:
    """``2024-01-31T12:00:00.123Z`` (ms), ``.123456Z`` (us), ``.123456789Z`` (ns).

    The session's time zone is UTC (the store sets it), and naive timestamps are UTC.
    """
    fraction = _FRACTION[time_unit]
    if time_unit != "ns":
        return f'to_char({name}, \'YYYY-MM-DD"T"HH24:MI:SS{fraction}"Z"\')'
    return (
        f"to_char({name}, 'YYYY-MM-DD\"T\"HH24:MI:SS{fraction}') "
        f"|| lpad({nanos}::text, 3, '0') || 'Z'"
    )


def misfit_checks(table: BoundTable, columns: list[str]) -> list[tuple[str, str, str]]:
    """(column, condition, value as text) for each time column whose values may not fit.

    A condition is true for a time the embedded store could not hold and NULL for a null,
    so ORed together they stay NULL (no misfit) on rows of nulls. The dataset's own time
    column is not here (its first and last values are checked from the stats), nor are
    decimals: :func:`find_decimal_misfit` checks those in the lines, on the client.
    """
    checks = []
    for name in columns:
        column = table.columns[name]
        if column.kind != "time" or column.source is None or name == table.spec.time_column:
            continue
        quoted = quote_ident(name)
        checks.append((name, _time_misfit(quoted, table.is_naive(name)), f"{quoted}::text"))
    return checks


def checked_lines(
    batch: pa.RecordBatch,
    *,
    spec: Dataset,
    columns: list[str],
    where: str,
    misfit_time: Callable[[], StoreError],
) -> pa.RecordBatch:
    """A batch of the lines query as LINE_SCHEMA, after its values were checked.

    Raises:
        StoreError: a line is NULL (a time that does not fit: ``misfit_time`` names it) or
            holds a decimal that does not fit (named here).
    """
    lines = batch.column(0)
    if lines.null_count:
        raise misfit_time()
    decimals = [name for name in columns if spec.column(name).kind == "decimal"]
    found = find_decimal_misfit(lines, columns, decimals)
    if found is not None:
        raise misfit_error(*found, where)
    if lines.type != pa.string():
        lines = lines.cast(pa.string())
    return pa.RecordBatch.from_arrays([lines], schema=LINE_SCHEMA)


def find_decimal_misfit(
    lines: pa.Array, names: list[str], decimals: list[str]
) -> tuple[str, str] | None:
    """(column, value) of the first decimal in ``lines`` that decimal(38, 22) cannot hold.

    Such a value has 17 digits in a row (16 integer and 22 fraction digits fit) or is NaN
    or infinity, so one regex over the batch's text clears nearly every batch; a batch it
    does not clear is parsed as CSV and its decimals are matched one by one.
    """
    if not decimals or not len(lines):
        return None
    first, last = _text_span(lines)
    text = lines.buffers()[2].slice(first, last - first)
    # the batch's text as one string (no copy), for one pass of the regex
    span = (0).to_bytes(4, "little") + (last - first).to_bytes(4, "little")
    whole = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(span), text])
    if not pc.any(pc.match_substring_regex(whole, _SUSPECT)).as_py():
        return None
    parsed = pacsv.read_csv(
        pa.BufferReader(text),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            include_columns=decimals,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for name in decimals:
        values = parsed.column(name).combine_chunks()
        bad = pc.invert(pc.match_substring_regex(values, _FITS))
        if pc.any(bad).as_py():
            index = pc.index(bad, True).as_py()
            return name, str(values[index].as_py())
    return None


def _text_span(lines: pa.Array) -> tuple[int, int]:
    """Where the values of a (possibly sliced) string array start and end in its data."""
    width = 8 if pa.types.is_large_string(lines.type) else 4
    offsets = lines.buffers()[1]
    at = lines.offset * width
    end = (lines.offset + len(lines)) * width
    first = int.from_bytes(offsets[at : at + width].to_pybytes(), "little")
    last = int.from_bytes(offsets[end : end + width].to_pybytes(), "little")
    return first, last


def _time_misfit(name: str, naive: bool) -> str:
    kind = "timestamp" if naive else "timestamptz"
    zone = "" if naive else "+00"
    first, last = (
        (_EPOCH + timedelta(microseconds=us)).isoformat(sep=" ") + zone
        for us in (_FIRST_US, _LAST_US)
    )
    return f"({name} < {kind} '{first}' OR {name} > {kind} '{last}')"


def misfit_sql(table: BoundTable, columns: list[str], where: str) -> str | None:
    """A query for the first value that made a line NULL: (column, value as text)."""
    checks = misfit_checks(table, columns)
    if not checks:
        return None
    which = " ".join(f"WHEN {condition} THEN '{name}'" for name, condition, _ in checks)
    value = " ".join(f"WHEN {condition} THEN {text}" for _, condition, text in checks)
    anywhere = " OR ".join(condition for _, condition, _ in checks)
    joiner = "AND" if where else "WHERE"
    return (
        f"SELECT CASE {which} END, CASE {value} END FROM {table.relation()} "
        f"{where} {joiner} ({anywhere}) {order_sql(table)} LIMIT 1"
    )
