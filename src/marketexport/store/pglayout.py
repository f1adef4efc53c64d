"""Where each dataset lives in a PostgreSQL database, and the tables ``db init`` creates.

By default dataset ``ohlcv`` is table ``ohlcv`` with the dataset's column names. The
``[postgres]`` section of the configuration maps a dataset onto a collector's own table:

    [postgres]
    schema = "market"                 # default schema of every table (default: search_path)
    [postgres.tables.ohlcv]
    table = "candles"
    schema = "public"                 # this table's schema
    [postgres.tables.ohlcv.columns]
    time = "ts"                       # dataset column -> table column
    quote_volume = ""                 # the table has no such column: read as empty

PostgreSQL keeps microseconds; a time column ``time`` has a companion ``time_nanos``
(``smallint``, 0-999: the nanoseconds past the microsecond) so that sources with 9 fraction
digits round-trip exactly. A table without the companion reads as 0 there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..datasets import DATASETS, Dataset
from ..errors import ConfigError, StoreError
from .sql import quote_ident

NANOS_SUFFIX = "_nanos"

# Column kind -> the type ``db init`` gives it.
CREATE_TYPES = {
    "text": "text",
    "id": "text",
    "decimal": "numeric",
    "integer": "bigint",
    "boolean": "boolean",
    "time": "timestamptz",
}

_TEXT = {"text", "character varying", "character"}
_INTEGERS = {"bigint", "integer", "smallint"}
_FLOATS = {"double precision", "real"}
_TIMES = {"timestamp with time zone", "timestamp without time zone"}
# Column kind -> the PostgreSQL types (as format_type names them) it can be read from.
ACCEPTED_TYPES: dict[str, set[str]] = {
    "text": _TEXT,
    "id": _TEXT | _INTEGERS | {"numeric", "uuid"},
    "decimal": {"numeric"} | _INTEGERS | _FLOATS,
    "integer": _INTEGERS,
    "boolean": {"boolean"},
    "time": _TIMES,
}
NANOS_TYPES = _INTEGERS

_SECTION_KEYS = ("schema", "tables")
_TABLE_KEYS = ("columns", "schema", "table")


def nanos_name(time_column: str) -> str:
    return time_column + NANOS_SUFFIX


@dataclass(frozen=True)
class TableMapping:
    """Where one dataset's rows live: schema, table and the table's column names."""

    dataset: str
    table: str
    schema: str | None = None
    # dataset column (or its nanos companion) -> table column; "" = the table has none
    columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        table = quote_ident(self.table)
        return f"{quote_ident(self.schema)}.{table}" if self.schema else table

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def source(self, name: str) -> str | None:
        """The table's column for a dataset column, or None when the table has none."""
        return self.columns.get(name, name) or None


@dataclass(frozen=True)
class Layout:
    """The ``[postgres]`` section: a default schema and per-dataset table mappings."""

    schema: str | None = None
    tables: Mapping[str, TableMapping] = field(default_factory=dict)

    def mapping(self, spec: Dataset) -> TableMapping:
        found = self.tables.get(spec.name)
        if found is not None:
            return found
        return TableMapping(spec.name, spec.name, self.schema)


def _expect_keys(where: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r} in {where} (expected one of: {', '.join(allowed)})",
                setting=where,
            )


def _text(where: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty_ok):
        raise ConfigError(f"{where} must be a non-empty name, not {value!r}", setting=where)
    return value


def _table(name: str, raw: Any, default_schema: str | None) -> TableMapping:
    where = f"[postgres.tables.{name}]"
    if name not in DATASETS:
        raise ConfigError(
            f"unknown dataset {name!r} in {where} (expected one of: {', '.join(DATASETS)})",
            setting=where,
        )
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table of settings, not {raw!r}", setting=where)
    _expect_keys(where, raw, _TABLE_KEYS)
    spec = DATASETS[name]
    known = [*spec.column_names, *(nanos_name(c.name) for c in spec.columns if c.kind == "time")]
    columns_raw = raw.get("columns", {})
    if not isinstance(columns_raw, Mapping):
        raise ConfigError(f"{where} columns must be a table, not {columns_raw!r}", setting=where)
    _expect_keys(f"[postgres.tables.{name}.columns]", columns_raw, tuple(known))
    columns = {
        key: _text(f"[postgres.tables.{name}.columns] {key}", value, empty_ok=True)
        for key, value in columns_raw.items()
    }
    for column in spec.columns:
        if columns.get(column.name) == "" and (not column.nullable or column.name in spec.key):
            raise ConfigError(
                f"[postgres.tables.{name}.columns] {column.name} cannot be empty: the "
                "column is required (a key column or one that is never empty)",
                setting=where,
            )
    schema = raw.get("schema", default_schema)
    return TableMapping(
        dataset=name,
        table=_text(f"{where} table", raw.get("table", name)),
        schema=_text(f"{where} schema", schema) if schema is not None else None,
        columns=columns,
    )


def parse_layout(raw: Mapping[str, Any] | None) -> Layout:
    """Validate the ``[postgres]`` section; unknown keys and datasets are errors."""
    if not raw:
        return Layout()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[postgres] must be a table of settings, not {raw!r}")
    _expect_keys("[postgres]", raw, _SECTION_KEYS)
    schema = raw.get("schema")
    if schema is not None:
        schema = _text("[postgres] schema", schema)
    tables_raw = raw.get("tables", {})
    if not isinstance(tables_raw, Mapping):
        raise ConfigError(f"[postgres] tables must be a table, not {tables_raw!r}")
    tables = {name: _table(name, value, schema) for name, value in tables_raw.items()}
    return Layout(schema, tables)


def _short(name: str) -> str:
    # PostgreSQL cuts identifiers at 63 bytes; keep index names unique and readable.
    return name if len(name.encode()) <= 63 else name.encode()[:63].decode(errors="ignore")


def create_statements(spec: Dataset, mapping: TableMapping) -> list[str]:
    """CREATE statements for a dataset's table, its primary key and its indexes."""
    lines: list[str] = []
    comments: list[str] = []
    for column in spec.columns:
        source = mapping.source(column.name)
        if source is None:
            continue
        required = "" if column.nullable else " NOT NULL"
        lines.append(f"{quote_ident(source)} {CREATE_TYPES[column.kind]}{required}")
        nanos = mapping.source(nanos_name(column.name)) if column.kind == "time" else None
        if nanos is not None:
            lines.append(
                f"{quote_ident(nanos)} smallint NOT NULL DEFAULT 0 "
                f"CHECK ({quote_ident(nanos)} BETWEEN 0 AND 999)"
            )
            comments.append(
                f"COMMENT ON COLUMN {mapping.qualified}.{quote_ident(nanos)} IS "
                f"'nanoseconds past the microsecond of {source} (0-999)'"
            )
    key = ", ".join(quote_ident(name) for name in key_sources(spec, mapping))
    lines.append(f"PRIMARY KEY ({key})")
    body = ",\n  ".join(lines)
    statements = [f"CREATE TABLE IF NOT EXISTS {mapping.qualified} (\n  {body}\n)", *comments]

    time_source = mapping.source(spec.time_column)
    time_nanos = mapping.source(nanos_name(spec.time_column))
    indexes: dict[str, list[str | None]] = {
        "time": [time_source, time_nanos],
        "exchange_symbol_time": [mapping.source("exchange"), mapping.source("symbol"), time_source],
    }
    for suffix, names in indexes.items():
        index = quote_ident(_short(f"{mapping.table}_{suffix}_idx"))
        columns = ", ".join(quote_ident(name) for name in names if name)
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {mapping.qualified} ({columns})")
    return statements


def key_sources(spec: Dataset, mapping: TableMapping) -> list[str]:
    """The table's key columns: the dataset key, with the time's nanos after the time."""
    names: list[str] = []
    for name in spec.key:
        source = mapping.source(name)
        if source is None:  # _table refuses empty key columns; kept for type checkers
            raise StoreError(f"key column {name!r} of {mapping.label} is not mapped")
        names.append(source)
        nanos = mapping.source(nanos_name(name)) if spec.column(name).kind == "time" else None
        if nanos is not None:
            names.append(nanos)
    return names
