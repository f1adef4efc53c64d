"""SQL text for filters and ordering, shared by the stores.

Values always travel as bound parameters; only column names, which have been checked
against the dataset, are written into the SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..datasets import Dataset
from ..request import Filter

# (value, column kind) -> (placeholder SQL, parameter value)
Placeholder = Callable[[Any, str], tuple[str, Any]]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def where_clause(
    spec: Dataset, filters: list[Filter], placeholder: Placeholder
) -> tuple[str, list[Any]]:
    """Return ``WHERE ...`` (or an empty string) and the parameters it binds."""
    parts: list[str] = []
    params: list[Any] = []
    for condition in filters:
        kind = spec.column(condition.column).kind
        column = quote_ident(condition.column)
        rendered: list[str] = []
        for value in condition.values:
            text, param = placeholder(value, kind)
            rendered.append(text)
            params.append(param)
        if condition.op == "in":
            parts.append(f"{column} IN ({', '.join(rendered)})")
        elif condition.op == "!=":
            parts.append(f"{column} IS DISTINCT FROM {rendered[0]}")
        else:
            parts.append(f"{column} {condition.op} {rendered[0]}")
    if not parts:
        return "", params
    return "WHERE " + " AND ".join(parts), params


def order_clause(spec: Dataset) -> str:
    return "ORDER BY " + ", ".join(quote_ident(name) for name in spec.order_by)
