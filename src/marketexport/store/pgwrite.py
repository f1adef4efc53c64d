"""Writing to the PostgreSQL store: rows go by COPY into a temporary table, then into the
dataset's table with ``INSERT ... ON CONFLICT DO NOTHING``, so rows whose key exists (or
repeats in the input) are skipped and counted.
"""

from __future__ import annotations

import pyarrow as pa

from ..errors import StoreError
from .pgquery import BoundTable
from .sql import quote_ident

# The temporary table of one import (one per connection, dropped after each dataset).
INCOMING = "marketexport_incoming"


def refuse_values(batch: pa.RecordBatch, absent: list[str], table: BoundTable) -> None:
    for name in absent:
        if name in batch.schema.names and batch.column(name).null_count < batch.num_rows:
            raise StoreError(
                f"column {name!r} has values but table {table.label!r} has no column for it "
                f"([postgres.tables.{table.spec.name}.columns] maps it to nothing); nothing "
                "imported",
                table=table.label,
                column=name,
            )


def insert_sql(table: BoundTable, schema: pa.Schema) -> str:
    """INSERT from the temporary table into the dataset's table, counting added rows."""
    sources = {**table.columns, **{n.name: n for n in table.nanos.values() if n is not None}}
    targets: list[str] = []
    values: list[str] = []
    for field in schema:
        source = sources.get(field.name)
        if source is None or source.source is None:
            continue
        targets.append(quote_ident(source.source))
        values.append(cast_to(quote_ident(field.name), source.pg_type, source.full_type))
    return (
        f"WITH added AS (INSERT INTO {table.mapping.qualified} ({', '.join(targets)}) "
        f"SELECT {', '.join(values)} FROM pg_temp.{INCOMING} ON CONFLICT DO NOTHING "
        "RETURNING 1) SELECT count(*) FROM added"
    )


def cast_to(value: str, pg_type: str | None, full_type: str | None) -> str:
    if pg_type == "timestamp without time zone":
        return f"({value} AT TIME ZONE 'UTC')"
    if pg_type in (None, "text", "numeric", "bigint", "boolean", "timestamp with time zone"):
        return value if full_type == pg_type else f"CAST({value} AS {full_type})"
    return f"CAST({value} AS {full_type})"
