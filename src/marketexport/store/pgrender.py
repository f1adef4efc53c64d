"""CSV lines from PostgreSQL, rendered where each part is cheapest: the store's CSV fast path.

A CSV export from PostgreSQL spends most of its time turning values into text. Decimals
are the costly part on the client (the server writes numeric as text, the client would
parse it into decimal128 and the CSV writer format it back), so the server writes each run
of neighbouring numbers as one finished piece of the line; text and times are cheaper on
the client, where Arrow kernels render a whole batch at once and the server's core stays
free for the query. Each line is then joined on the client from its parts, in exactly the
bytes that export/render.py and the CSV writer produce:

- text and ids as they are, quoted per RFC 4180 only when they hold a comma, a quote, CR
  or LF, or are empty (an empty string is ``""``, a null an empty field): the CSV writer's
  own quoting; neighbouring never-NULL text values arrive as one value joined with byte
  0xFF (see :func:`line_parts`), as each query column costs the client's driver time;
- times sent as microseconds (with their nanos companion when the export's unit is ns)
  and rendered by :func:`~marketexport.export.render.render_time`, as the batch scan does;
- decimals through ``trim_scale`` on the server: numeric's text is plain notation, so
  trimmed it is ``0.00001234``, ``78189.2``, ``0``, never E-notation or trailing zeros;
  integers in digits, booleans as ``true``/``false``; a null an empty field.

Measured on 1,000,000 candles (server time alone, no parallel workers): the whole line
rendered by the server took 2.3 s, this split 1.5 s, and ``COPY ... CSV`` of the raw
values 1.4 s; ``to_char`` for the times and the regex that decides quoting were most of
the difference.

Values that the embedded store could not hold stop the export, as they do in the batch
scan: a decimal beyond decimal(38, 22), NaN or infinity is found in the lines by
:func:`find_decimal_misfit` (a regex pass on the client, cheaper there than a check of
every value on the server), and a time outside the 64-bit nanosecond range by the checked
arithmetic that joins it with its nanos (or a range check), after which :func:`misfit_sql`
finds the value to name it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..datasets import Dataset
from ..decimals import FITS_TEXT, INTEGER_DIGITS
from ..errors import StoreError
from ..export.formats.text import any_in_text, csv_quote
from ..export.render import joined_bytes, render_time
from .pglayout import nanos_name
from .pgquery import BoundTable, SourceColumn, joinable_texts, order_sql
from .pgread import join_nanos, misfit_error
from .sql import quote_ident

# The layouts this module renders; a writer names the one it wants.
LINE_LAYOUTS = ("csv",)
LINE_SCHEMA = pa.schema([pa.field("line", pa.string(), nullable=False)])
# trim_scale and min_scale came with PostgreSQL 13; older servers get the batch scan.
LINES_SINCE_VERSION = 130000
# A decimal that does not fit has more digits in a row than any that does, or is NaN or
# infinity; _FITS is the exact rule for one value (empty: a null).
_SUSPECT = rf"[0-9]{{{INTEGER_DIGITS + 1}}}|NaN|Infinity"
_FITS = rf"^({FITS_TEXT})?$"
_EPOCH = datetime(1970, 1, 1)
# Joins never-NULL text values in one query column: UTF-8 text never holds this byte.
_SEPARATOR = 0xFF
# The embedded store's time range (1677-09-21 to 2262-04-11) is 64-bit nanoseconds: the
# microseconds before _LOW_US and after _HIGH_US do not fit at all; of _LOW_US itself only
# the nanoseconds from _LOW_NS on fit, of _HIGH_US those up to _HIGH_NS.
_LOW_US, _LOW_NS = divmod(-(2**63), 1000)
_HIGH_US, _HIGH_NS = divmod(2**63 - 1, 1000)


@dataclass(frozen=True)
class Part:
    """One piece of a line as the query sends it.

    ``text``: text or id values, quoted by the client (several never-NULL neighbours may
    arrive as one value, joined by the server with byte 0xFF); ``time``: a time, with its
    nanos when the export's unit is ns (then two query columns); ``numbers``: neighbouring
    numbers, rendered and joined with commas by the server.
    """

    kind: str
    names: tuple[str, ...]
    nanos: bool = False


def line_parts(
    table: BoundTable, columns: list[str], time_unit: str, *, join_texts: bool
) -> list[Part]:
    """The selected columns grouped into the parts a line is joined from.

    ``join_texts`` (for a UTF-8 database only): neighbouring never-NULL text values travel
    as one value, their bytes joined with 0xFF, a byte that UTF-8 text never holds, so the
    client can always tell them apart. Every query column costs the driver time on the
    client (about 0.07 s per million rows), so fewer, wider parts are cheaper.
    """
    joinable = set(joinable_texts(table)) if join_texts else set()
    parts: list[Part] = []
    for name in columns:
        kind = table.columns[name].kind
        if kind == "time":
            parts.append(Part("time", (name,), nanos=time_unit == "ns"))
            continue
        group = "text" if kind in ("text", "id") else "numbers"
        last = parts[-1] if parts else None
        if last is not None and last.kind == group == "numbers":
            parts[-1] = Part(group, (*last.names, name))
        elif last is not None and last.kind == group == "text" and {*last.names, name} <= joinable:
            parts[-1] = Part(group, (*last.names, name))
        else:
            parts.append(Part(group, (name,)))
    return parts


def line_sql(table: BoundTable, parts: list[Part], where: str) -> str:
    """The ordered select of each row's parts (see :func:`assembled_lines`)."""
    outputs = []
    for part in parts:
        names = [quote_ident(name) for name in part.names]
        if part.kind == "numbers":
            fields = [_number(table.columns[name]) for name in part.names]
            # the line's end too, when the numbers end it (cheaper here than on the client)
            end = " || E'\\n'" if part is parts[-1] else ""
            outputs.append(f"concat_ws(',', {', '.join(fields)}){end}")
        elif part.kind == "time":
            outputs.append(names[0])
            if part.nanos:
                outputs.append(quote_ident(nanos_name(part.names[0])))
        elif len(names) > 1:
            outputs.append(" || '\\xff'::bytea || ".join(f"textsend({name})" for name in names))
        else:
            outputs.append(f"{names[0]}::text")
    select = ", ".join(outputs)
    return f"SELECT {select} FROM {table.relation()} {where} {order_sql(table)}"


def _number(column: SourceColumn) -> str:
    """One number's text; concat_ws drops NULL arguments, so a nullable one becomes ''."""
    name = quote_ident(column.name)
    if column.kind == "decimal":
        text = f"trim_scale({name})"
    elif column.kind == "boolean":
        text = f"{name}::text"  # the cast is true/false (boolean's own output is t/f)
    else:
        text = name
    if column.source is not None and column.not_null:
        return text
    return f"coalesce({text}::text, '')"


def assembled_lines(
    batch: pa.RecordBatch,
    *,
    parts: list[Part],
    spec: Dataset,
    time_unit: str,
    where: str,
    misfit_time: Callable[[], StoreError],
) -> pa.RecordBatch:
    """A batch of the parts query as LINE_SCHEMA: one finished CSV line per row.

    ``time_unit`` must be exact for every selected time (the store's stats say which).

    Raises:
        StoreError: a time does not fit 64-bit nanoseconds (``misfit_time`` names it) or a
            decimal does not fit decimal(38, 22) (named here).
    """
    pieces = []
    at = 0
    for part in parts:
        data = batch.column(at)
        at += 1
        if isinstance(data.type, pa.ExtensionType):
            data = data.storage
        if part.kind == "time":
            companion = batch.column(at) if part.nanos else None
            pieces.append(_time_text(data, companion, time_unit, misfit_time))
            at += part.nanos
            continue
        if part.kind == "text" and len(part.names) > 1:
            pieces.append(_joined_texts(data, len(part.names)))
            continue
        if data.type != pa.string():
            data = data.cast(pa.string())
        if part.kind == "numbers":
            found = find_decimal_misfit(data, part.names, _decimals(spec, part.names))
            if found is not None:
                raise misfit_error(*found, where)
        else:
            data = pc.fill_null(csv_quote(data), "")
        pieces.append(data)
    if parts[-1].kind != "numbers":  # the server ended the line otherwise
        pieces[-1] = pc.binary_join_element_wise(pieces[-1], "\n", "")
    lines = pc.binary_join_element_wise(*pieces, ",") if len(pieces) > 1 else pieces[0]
    return pa.RecordBatch.from_arrays([lines], schema=LINE_SCHEMA)


def _decimals(spec: Dataset, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if spec.column(name).kind == "decimal"]


def _time_text(
    times: pa.Array, nanos: pa.Array | None, unit: str, misfit_time: Callable[[], StoreError]
) -> pa.Array:
    """The ISO text of a time column at the export's unit, as the batch scan renders it.

    Raises:
        StoreError: (from ``misfit_time``) a time outside the 64-bit nanosecond range.
    """
    if nanos is not None:
        try:
            exact = join_nanos(times, nanos)
        except pa.ArrowInvalid:
            raise misfit_time() from None
    else:
        micros = pc.cast(times, pa.int64())
        low, high = pc.min_max(micros).values()
        # without nanos: from the first whole microsecond that fits to the last
        if low.is_valid and (low.as_py() <= _LOW_US or high.as_py() > _HIGH_US):
            raise misfit_time()
        exact = micros.view(pa.timestamp("us", tz="UTC"))
    # the stats chose a unit that every time of the selection fits exactly
    shown = pc.cast(exact, pa.timestamp(unit, tz="UTC"), safe=True)
    return pc.fill_null(render_time(shown), "")


def _joined_texts(joined: pa.Array, count: int) -> pa.Array:
    """CSV fields from ``count`` text values per row that the server joined with 0xFF.

    Market data's text (exchanges, symbols, sides) almost never needs quotes, which one
    look at the batch's bytes shows: then each 0xFF becomes a comma and that is all.
    Otherwise the values are split apart and each is quoted as the CSV writer quotes it.
    """
    rows = len(joined)
    width = 8 if pa.types.is_large_binary(joined.type) else 4
    offsets = np.frombuffer(joined.buffers()[1], f"<i{width}", rows + 1, joined.offset * width)
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(joined.buffers()[2], np.uint8, last - first, first)
    gaps = data == _SEPARATOR
    ends = offsets - first
    empty = (
        bool((gaps[1:] & gaps[:-1]).any())  # an empty value between two others
        or bool(gaps[ends[:-1]].any())  # a row that starts with an empty value
        or bool(gaps[ends[1:] - 1].any())  # or ends with one
    )
    special = (data == 0x22) | (data == 0x2C) | (data == 0x0D) | (data == 0x0A)
    if not empty and not special.any():
        text = data.copy()
        text[gaps] = ord(",")
        kind = pa.large_string() if width == 8 else pa.string()
        return pa.Array.from_buffers(kind, rows, [None, pa.py_buffer(ends), pa.py_buffer(text)])
    fields = pc.split_pattern(joined, bytes([_SEPARATOR]))
    values = [pc.list_element(fields, i).cast(pa.string()) for i in range(count)]
    return pc.binary_join_element_wise(*[csv_quote(value) for value in values], ",")


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
        nanos = quote_ident(nanos_name(name))
        condition = _time_misfit(quoted, nanos, table.is_naive(name))
        with_nanos = f"{quoted} || ' + ' || {nanos} || ' ns'"
        text = f"CASE WHEN {nanos} = 0 THEN {quoted}::text ELSE {with_nanos} END"
        checks.append((name, condition, text))
    return checks


def find_decimal_misfit(
    lines: pa.Array, names: list[str] | tuple[str, ...], decimals: list[str]
) -> tuple[str, str] | None:
    """(column, value) of the first decimal in ``lines`` that decimal(38, 22) cannot hold.

    ``lines`` are CSV rows of the columns ``names`` (with or without their line ends). Such
    a value has 17 digits in a row (16 integer and 22 fraction digits fit) or is NaN or
    infinity, so one regex over the batch's text clears nearly every batch; the rows it
    does not clear are matched one by one, and those that match are parsed as CSV.
    """
    if not decimals or not len(lines) or not any_in_text(lines, _SUSPECT):
        return None
    # rows that only looked suspect where two of them met in the whole text drop out here
    suspects = lines.filter(pc.match_substring_regex(lines, _SUSPECT))
    if not len(suspects):
        return None
    ended = pc.if_else(
        pc.ends_with(suspects, "\n"), suspects, pc.binary_join_element_wise(suspects, "\n", "")
    )
    parsed = pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(joined_bytes(ended))),
        read_options=pacsv.ReadOptions(column_names=list(names), use_threads=False),
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


def _time_misfit(name: str, nanos: str, naive: bool) -> str:
    """True for a time (with its nanos) outside 64-bit nanoseconds, NULL for a null."""
    kind = "timestamp" if naive else "timestamptz"
    zone = "" if naive else "+00"
    low, high = (
        f"{kind} '{(_EPOCH + timedelta(microseconds=us)).isoformat(sep=' ')}{zone}'"
        for us in (_LOW_US, _HIGH_US)
    )
    return (
        f"({name} < {low} OR {name} > {high} OR ({name} = {low} AND {nanos} < {_LOW_NS}) "
        f"OR ({name} = {high} AND {nanos} > {_HIGH_NS}))"
    )


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
