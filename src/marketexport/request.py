"""ExportRequest: what an export should contain and how it is written.

This module is the one place where input is judged: the CLI, the HTTP API, tasks and
schedules all build an ``ExportRequest`` through :func:`build_request`, so a bad value gets
the same message wherever it comes from.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .datasets import DECIMAL_TYPE, Dataset, get_dataset
from .errors import RequestError, shown_value
from .export.encryption.base import EncryptionSpec
from .timeparse import ns_to_iso, parse_instant

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in")
_DECIMAL_DIGITS = DECIMAL_TYPE.precision - DECIMAL_TYPE.scale
_DECIMAL_LIMIT = Decimal(10) ** _DECIMAL_DIGITS
_WHERE = re.compile(
    r"^\s*(?P<column>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:(?P<op><=|>=|!=|==|=|<|>)\s*(?P<value>[^=<>!].*?)|(?i:in)\s*\((?P<items>.*)\))\s*$",
    re.DOTALL,
)
_WHERE_FORMS = "'COLUMN OP VALUE' with OP one of =, !=, <, <=, >, >=, or 'COLUMN in (A, B)'"


@dataclass(frozen=True)
class Filter:
    """One condition on a column; values are already typed for the column's kind."""

    column: str
    op: str
    values: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "op": self.op, "values": [str(v) for v in self.values]}


@dataclass(frozen=True)
class ExportRequest:
    """A validated export request. Build it with :func:`build_request`."""

    dataset: str
    format: str
    compression: str = "none"
    exchanges: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    start_ns: int | None = None
    end_ns: int | None = None
    where: tuple[Filter, ...] = ()
    columns: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Names, paths and variable names only: key material never enters a request.
    encryption: EncryptionSpec | None = None
    sign_key: str | None = None  # a signing key's name in the key directory
    # Where the finished export is delivered: a directory, sftp://user@host[:port]/path or
    # s3://bucket/prefix (marketexport.delivery); never a credential. None: the export only.
    destination: str | None = None

    @property
    def spec(self) -> Dataset:
        return get_dataset(self.dataset)

    @property
    def selected_columns(self) -> list[str]:
        return list(self.columns) if self.columns else self.spec.column_names

    def filters(self) -> list[Filter]:
        """Every condition of the request, the time range included, as Filters."""
        spec = self.spec
        found: list[Filter] = []
        if self.exchanges:
            found.append(Filter("exchange", "in", self.exchanges))
        if self.symbols:
            found.append(Filter("symbol", "in", self.symbols))
        if self.start_ns is not None:
            found.append(Filter(spec.time_column, ">=", (self.start_ns,)))
        if self.end_ns is not None:
            found.append(Filter(spec.time_column, "<", (self.end_ns,)))
        found.extend(self.where)
        return found

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as written into manifests and task records."""
        data = asdict(self)
        data["where"] = [f.to_dict() for f in self.where]
        data["exchanges"] = list(self.exchanges)
        data["symbols"] = list(self.symbols)
        data["columns"] = list(self.columns) if self.columns else None
        data["start"] = ns_to_iso(self.start_ns) if self.start_ns is not None else None
        data["end"] = ns_to_iso(self.end_ns) if self.end_ns is not None else None
        data["encryption"] = self.encryption.to_dict() if self.encryption else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportRequest:
        """Rebuild (and re-validate) a request from :meth:`to_dict` output."""
        where = [
            f"{f['column']} in ({', '.join(f['values'])})"
            if f["op"] == "in"
            else f"{f['column']} {f['op']} {f['values'][0]}"
            for f in data.get("where", [])
        ]
        return build_request(
            dataset=data["dataset"],
            format=data["format"],
            compression=data.get("compression", "none"),
            exchanges=data.get("exchanges") or (),
            symbols=data.get("symbols") or (),
            start=str(data["start_ns"]) + "ns" if data.get("start_ns") is not None else None,
            end=str(data["end_ns"]) + "ns" if data.get("end_ns") is not None else None,
            where=where,
            columns=data.get("columns"),
            options=data.get("options") or {},
            encryption=data.get("encryption"),
            sign_key=data.get("sign_key"),
            destination=data.get("destination"),
        )


_EXCHANGE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_SYMBOL = re.compile(rf"^{_PART}(?:[/_-]{_PART})?(?::{_PART})?$")


def check_exchange(name: str) -> str:
    """An exchange id: lower-case letters, digits, '.', '_', '-'."""
    if not _EXCHANGE.match(name):
        raise RequestError(
            f"invalid exchange {name!r} (expected an exchange id such as binance, "
            "coinbase or bybit: letters, digits, '.', '_' or '-')",
            exchange=name,
        )
    return name


def check_symbol(symbol: str) -> str:
    """A market symbol in the unified form BASE/QUOTE[:SETTLE] (or an exchange's own)."""
    if not _SYMBOL.match(symbol):
        raise RequestError(
            f"invalid symbol {symbol!r} (expected BASE/QUOTE or BASE/QUOTE:SETTLE, "
            "e.g. BTC/USDT or BTC/USDT:USDT)",
            symbol=symbol,
        )
    return symbol


_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


def check_account(label: str) -> str:
    """An account label: 1 to 64 letters, digits, '.', '_', '-', '@' or '+'."""
    if not _ACCOUNT.fullmatch(label):
        raise RequestError(
            f"invalid account {shown_value(label)} (expected an account label of 1 to 64 "
            "letters, digits, '.', '_', '-', '@' or '+', starting with a letter or digit, "
            "e.g. main or sub-1)",
            account=label,
        )
    return label


def _parse_bound(text: str | None, what: str) -> int | None:
    # An empty bound is refused by parse_instant like any other bad text: only a bound
    # that is left out means "open".
    if text is None:
        return None
    if text.endswith("ns") and text[:-2].lstrip("-").isdigit():
        return int(text[:-2])
    return parse_instant(text, what=what)


def typed_value(spec: Dataset, column: str, text: str) -> Any:
    """Convert ``text`` to the Python value for ``column``'s kind, or raise naming it."""
    kind = spec.column(column).kind
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    try:
        if kind == "decimal":
            number = Decimal(value)
            if not number.is_finite() or abs(number) >= _DECIMAL_LIMIT:
                raise InvalidOperation
            return number
        if kind == "integer":
            whole = int(value)
            if not -(2**63) <= whole < 2**63:
                raise ValueError
            return whole
        if kind == "boolean":
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise ValueError
            return lowered == "true"
        if kind == "time":
            return parse_instant(value, what=f"value for {column}")
    except RequestError:
        raise
    except (ValueError, InvalidOperation):
        accepted = {
            "decimal": f"a decimal number below 10^{_DECIMAL_DIGITS} in magnitude",
            "integer": "a whole number that fits 64 bits",
            "boolean": "true or false",
        }[kind]
        raise RequestError(
            f"invalid value {text!r} for column {column!r} (expected {accepted})",
            column=column,
            value=text,
        ) from None
    return value


def check_columns(spec: Dataset, columns: Any) -> tuple[str, ...]:
    """The chosen columns (comma-separated text or a list), each known and given once."""
    if isinstance(columns, str):
        shown = repr(columns)
        names = [name.strip() for name in columns.split(",") if name.strip()]
    else:
        shown = "[]"
        names = [str(name) for name in columns]
    if not names:
        raise RequestError(
            f"no column in columns {shown} (expected one or more of: "
            f"{', '.join(spec.column_names)}; leave columns out to export them all)",
            value=shown,
        )

    seen: set[str] = set()
    for name in names:
        spec.column(name)
        if name in seen:
            raise RequestError(
                f"column {name!r} is given twice in columns (each column may appear once)",
                column=name,
            )
        seen.add(name)
    return tuple(names)


def parse_where(spec: Dataset, expression: str) -> Filter:
    """Parse one ``--where`` expression into a Filter."""
    match = _WHERE.match(expression)
    if not match:
        raise RequestError(
            f"invalid --where expression {expression!r} (expected {_WHERE_FORMS})",
            value=expression,
        )
    column = match["column"]
    spec.column(column)
    if match["items"] is not None:
        items = [item for item in match["items"].split(",") if item.strip()]
        if not items:
            raise RequestError(
                f"empty list in --where expression {expression!r} "
                f"(expected: {column} in (value, value, ...) with at least one value)"
            )
        return Filter(column, "in", tuple(typed_value(spec, column, item) for item in items))
    op = "=" if match["op"] == "==" else match["op"]
    return Filter(column, op, (typed_value(spec, column, match["value"]),))


def build_request(
    *,
    dataset: str,
    format: str,
    compression: str = "none",
    exchanges: Any = (),
    symbols: Any = (),
    start: str | None = None,
    end: str | None = None,
    where: Any = (),
    columns: Any = None,
    options: dict[str, Any] | None = None,
    encryption: EncryptionSpec | dict[str, Any] | None = None,
    sign_key: str | None = None,
    destination: str | None = None,
) -> ExportRequest:
    """Validate every field and return the request, or raise a RequestError naming it."""
    from .delivery.base import parse_destination
    from .export.compression import check_codec
    from .export.encryption import check_encryption
    from .export.encryption.keys import check_name
    from .export.formats import get_format

    spec = get_dataset(dataset)
    writer_spec = get_format(format)
    check_codec(compression)
    writer_spec.check_compression(compression)

    start_ns = _parse_bound(start, "start")
    end_ns = _parse_bound(end, "end")
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise RequestError(
            f"empty or inverted time range: start {ns_to_iso(start_ns)} is not before "
            f"end {ns_to_iso(end_ns)} (the range is [start, end))",
            start=start,
            end=end,
        )

    chosen = None if columns is None else check_columns(spec, columns)

    filters = tuple(parse_where(spec, expr) for expr in (where or ()))
    opts = dict(options or {})
    writer_spec.check_options(opts)
    if isinstance(encryption, dict):
        encryption = EncryptionSpec.from_dict(encryption)
    if encryption is not None:
        check_encryption(encryption)
    if sign_key is not None:
        check_name(sign_key)
    return ExportRequest(
        dataset=spec.name,
        format=writer_spec.name,
        compression=compression,
        exchanges=tuple(check_exchange(str(e).strip().lower()) for e in exchanges),
        symbols=tuple(check_symbol(str(s).strip()) for s in symbols),
        start_ns=start_ns,
        end_ns=end_ns,
        where=filters,
        columns=chosen,
        options=opts,
        encryption=encryption,
        sign_key=sign_key or None,
        destination=parse_destination(destination).url if destination is not None else None,
    )
