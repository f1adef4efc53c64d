"""Reading helpers shared by the market-data importers.

They read a file's bytes (plain, gzip or a one-member zip), parse CSV text into string
columns with Arrow, and convert columns exactly with :mod:`.convert`, turning every failure
into a SourceError that names the file, the line and the value. The ``first_line`` argument
is the 1-based line number of the first data row, so that row ``i`` is line
``first_line + i``.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import SourceError
from . import Hints
from .convert import (
    ConvertError,
    decimal_column,
    decimal_from_text,
    epoch_to_ns,
    guess_epoch_unit,
    source_error,
)
from .symbols import EXCHANGE_ALIASES, normalize_exchange, parse_unified, unify_symbol

_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def read_payload(path: Path) -> bytes:
    """The file's bytes; ``.gz`` files are decompressed, ``.zip`` files must hold one file."""
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise source_error(
                        path,
                        f"zip archive holds {len(members)} files (expected exactly one CSV)",
                    )
                return archive.read(members[0])
        return path.read_bytes()
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise source_error(path, f"cannot read the file: {exc}") from exc


def text_head(path: Path, head: bytes) -> bytes:
    """The first bytes of the file's text: ``head`` itself, or inflated for a ``.gz`` file."""
    if not path.name.lower().endswith(".gz"):
        return head
    try:
        return zlib.decompressobj(wbits=31).decompress(head)
    except zlib.error:
        return b""


def is_number(text: str) -> bool:
    """True when ``text`` is a plain or scientific decimal number."""
    return bool(_NUMBER.match(text.strip()))


def first_line(data: bytes) -> str:
    """The first line of ``data``, decoded tolerantly (invalid UTF-8 becomes U+FFFD)."""
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    return line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")


def read_csv_strings(path: Path, data: bytes, names: Sequence[str], skip_rows: int = 0) -> pa.Table:
    """Every column of a CSV as strings, named ``names``, after ``skip_rows`` lines.

    Skipped lines are never decoded, so a header with invalid UTF-8 does no harm.
    """
    read_options = pacsv.ReadOptions(
        column_names=list(names), skip_rows=skip_rows, block_size=1 << 24
    )
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        return pacsv.read_csv(
            io.BytesIO(data), read_options=read_options, convert_options=convert_options
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _locate_csv_problem(path, data, len(names), skip_rows, exc) from None


def _locate_csv_problem(
    path: Path, data: bytes, width: int, skip_rows: int, exc: Exception
) -> SourceError:
    """A SourceError naming the first line whose field count or encoding is wrong."""
    for number, raw in enumerate(data.splitlines(), start=1):
        if number <= skip_rows or not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return source_error(path, "the line is not valid UTF-8 text", number)
        fields = line.count(",") + 1
        if fields != width and '"' not in line:
            return source_error(path, f"{fields} fields where {width} were expected", number)
    return source_error(path, f"cannot parse the CSV text: {exc}")


@contextmanager
def at_lines(path: Path, first: int | None) -> Iterator[None]:
    """Turn a ConvertError into a SourceError naming the file and the line (or row)."""
    try:
        yield
    except ConvertError as exc:
        if exc.row is None:
            raise source_error(path, str(exc)) from None
        if first is None:
            raise source_error(path, f"row {exc.row + 1}: {exc}") from None
        raise source_error(path, str(exc), first + exc.row) from None


def decimals(
    path: Path, values: pa.Array, what: str, first: int | None, *, from_float: bool = False
) -> pa.Array:
    """An exact decimal column (from text, floats or integers) or a SourceError.

    ``from_float`` says that text columns hold binary-float numbers (JSON numbers): see
    :func:`.convert.decimal_from_text` for the one rounding this allows.
    """
    values = _flat(values)
    is_text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    with at_lines(path, first):
        if from_float and is_text:
            return decimal_from_text(values, what, from_float=True)
        return decimal_column(values, what)


def integers(path: Path, values: pa.Array, what: str, first: int | None) -> pa.Array:
    """An int64 column from whole-number text (or integers) or a SourceError."""
    values = _flat(values)
    if pa.types.is_integer(values.type):
        return pc.cast(values, pa.int64())
    try:
        return pc.cast(pc.utf8_trim_whitespace(values), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for index, text in enumerate(values.to_pylist()):
        if text is not None and not _INTEGER.match(text.strip()):
            with at_lines(path, first):
                raise ConvertError(f"{what} {text!r} is not a whole number", index)
    raise source_error(path, f"{what} is out of range for a 64-bit integer")


def epoch_times(
    path: Path, values: pa.Array, what: str, first: int | None, unit: str | None = None
) -> tuple[pa.Array, str]:
    """timestamp[ns] from integer epoch values; the unit is found by magnitude if not given.

    Every value must have the magnitude of the same unit: a file mixing milliseconds and
    microseconds, or holding times a spreadsheet turned into ``1.70027E+12``, is refused.
    """
    values = _flat(values)
    if not pa.types.is_integer(values.type):
        try:
            values = pc.cast(pc.utf8_trim_whitespace(values), pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            _refuse_epoch_text(path, values, what, first)
            values = integers(path, values, what, first)
    if len(values) == 0:
        return pa.array([], pa.timestamp("ns")), unit or "ms"
    if values.null_count:
        with at_lines(path, first):
            raise ConvertError(f"{what} is empty", values.to_pylist().index(None))
    found = unit or guess_epoch_unit(pc.max(pc.abs(values)).as_py())
    smallest = guess_epoch_unit(pc.min(pc.abs(values)).as_py())
    if unit is None and smallest != found:
        index = next(i for i, v in enumerate(values.to_pylist()) if guess_epoch_unit(v) != found)
        with at_lines(path, first):
            raise ConvertError(
                f"{what} {values[index].as_py()} is in {_UNIT_NAMES[smallest]} while the file "
                f"uses {_UNIT_NAMES[found]}",
                index,
            )
    try:
        return epoch_to_ns(values, found), found
    except pa.ArrowInvalid as exc:
        raise source_error(path, f"{what} out of range for {_UNIT_NAMES[found]}: {exc}") from exc


def _refuse_epoch_text(path: Path, values: pa.Array, what: str, first: int | None) -> None:
    """Raise naming the first value that is not a whole epoch number."""
    for index, text in enumerate(values.to_pylist()):
        if text is not None and not _INTEGER.match(text.strip()):
            problem = f"{what} {text!r} is not a whole epoch number"
            if is_number(text):
                problem += (
                    " (scientific or decimal notation: the digits were lost, as when a "
                    "spreadsheet re-saves the file)"
                )
            with at_lines(path, first):
                raise ConvertError(problem, index)


def booleans(path: Path, values: pa.Array, what: str, first: int | None) -> pa.Array:
    """A boolean column from ``true/false`` in any letter case, or real booleans."""
    values = _flat(values)
    if pa.types.is_boolean(values.type):
        return values
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(values, pa.string())))
    is_true = pc.equal(lowered, "true")
    is_known = pc.or_(is_true, pc.equal(lowered, "false"))
    if not pc.all(pc.fill_null(is_known, True)).as_py():
        index = pc.index(is_known, False).as_py()
        with at_lines(path, first):
            raise ConvertError(f"{what} {values[index].as_py()!r} is not true or false", index)
    return is_true


def sides(path: Path, values: pa.Array, what: str, first: int | None) -> pa.Array:
    """Taker side as ``buy``/``sell`` from any letter case (Buy, SELL...)."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(_flat(values)))
    lowered = pc.if_else(pc.equal(lowered, ""), pa.scalar(None, pa.string()), lowered)
    known = pc.is_in(lowered, pa.array(["buy", "sell"]))
    if not pc.all(pc.or_(known, pc.is_null(lowered))).as_py():
        index = pc.index(known, False).as_py()
        with at_lines(path, first):
            raise ConvertError(f"{what} {values[index].as_py()!r} is not buy or sell", index)
    return lowered


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values


def need_exchange(path: Path, stated: str | None, hints: Hints, how: str) -> tuple[str, str | None]:
    """The exchange id and implied market: the file's own if stated, else the flag's."""
    name = stated or hints.exchange
    if not name:
        raise SourceError(
            f"{path}: exchange unknown ({how}); give it with --exchange NAME "
            "(e.g. --exchange binance)",
            path=str(path),
            missing="exchange",
        )
    return normalize_exchange(name)


def need_symbol(
    path: Path,
    native: str | None,
    exchange: str,
    market: str | None,
    hints: Hints,
    how: str,
) -> str:
    """The unified symbol: the file's own if it names one, else the ``--symbol`` flag's.

    A symbol taken from a file name that does not map for this exchange (``btc-perp`` on
    binance) gives way to ``--symbol`` when that is given.
    """
    if native and hints.symbol:
        try:
            return unify_symbol(native, exchange, market)
        except SourceError:
            native = None
    text = native or hints.symbol
    if not text:
        raise SourceError(
            f"{path}: symbol unknown ({how}); give it with --symbol SYMBOL "
            "(e.g. --symbol BTC/USDT)",
            path=str(path),
            missing="symbol",
        )
    try:
        return unify_symbol(text, exchange, market)
    except SourceError as exc:
        raise SourceError(f"{path}: {exc}", path=str(path), symbol=text) from None


def hinted_market(hints: Hints) -> str | None:
    """The market the flags imply: a unified ``--symbol`` or an ``--exchange`` alias."""
    if hints.symbol and "/" in hints.symbol:
        unified = parse_unified(hints.symbol)
        if unified is not None:
            return unified.market
    if hints.exchange:
        return normalize_exchange(hints.exchange)[1]
    return None


def require(path: Path, values: pa.Array, what: str, first: int | None) -> pa.Array:
    """``values`` unchanged, or a SourceError naming the first empty one."""
    if values.null_count:
        index = pc.index(pc.is_null(values), True).as_py()
        with at_lines(path, first):
            raise ConvertError(f"{what} is empty", index)
    return values


def synthesized_ids(times_ns: pa.Array) -> pa.Array:
    """Trade ids ``'<time in ms>-<n>'`` for sources without ids, n counting from 0 the
    trades of the same millisecond in file order, so a re-import yields the same ids."""
    counts: dict[int, int] = {}
    ids: list[str] = []
    for ns in pc.cast(times_ns, pa.int64()).to_pylist():
        ms = ns // 1_000_000
        n = counts.get(ms, 0)
        counts[ms] = n + 1
        ids.append(f"{ms}-{n}")
    return pa.array(ids, pa.string())


def path_exchange(path: Path) -> str | None:
    """The exchange named by the file's folder, as in freqtrade's ``data/<exchange>/`` and
    ``data/<exchange>/futures/`` layout; None when the folder is no known exchange."""
    folder = path.parent
    if folder.name.lower() == "futures":
        folder = folder.parent
    name = folder.name.lower()
    return name if name in EXCHANGE_ALIASES else None
