"""``marketexport db``: create and check the store's tables."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from ..config import Settings
from ..datasets import DATASETS
from ..errors import ConfigError, ExportError
from ..store import open_store
from . import AppContext, pass_app
from .output import print_json


def _settings(app: AppContext, store: str | None) -> Settings:
    settings = app.settings
    return replace(settings, store=store) if store else settings


def _postgres(settings: Settings) -> Any:
    url = settings.store_url
    if not url.startswith(("postgresql://", "postgres://")):
        return None
    return open_store(settings)


@click.group("db")
def db_group() -> None:
    """Create and check the store's tables."""


@db_group.command("init")
@click.option("--store", help="Store URL (default: the configured store).")
@click.option("--json", "as_json", is_flag=True, help="Print the tables as JSON.")
@pass_app
def init_command(app: AppContext, store: str | None, as_json: bool) -> int:
    """Create every dataset's table, primary key and indexes that is missing.

    For PostgreSQL, the tables follow the [postgres] mappings of the configuration; for the
    embedded DuckDB file, opening it creates its tables.
    """
    settings = _settings(app, store)
    opened = _postgres(settings)
    if opened is None:
        open_store(settings).close()
        rows: list[dict[str, Any]] = [
            {"dataset": name, "table": name, "created": None} for name in DATASETS
        ]
    else:
        try:
            done = opened.init_schema()
        finally:
            opened.close()
        rows = [{"dataset": d, "table": t, "created": created} for d, t, created in done]
    if as_json:
        print_json({"store": repr(opened) if opened else settings.store_url, "tables": rows})
        return 0
    for row in rows:
        state = {True: "created", False: "exists", None: "ready"}[row["created"]]
        click.echo(f"{row['dataset']}: table {row['table']} {state}")
    return 0


@db_group.command("check")
@click.option("--store", help="Store URL (default: the configured store).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def check_command(app: AppContext, store: str | None, as_json: bool) -> int:
    """Check that every dataset's (mapped) table and columns exist with usable types."""
    settings = _settings(app, store)
    opened = _postgres(settings)
    if opened is None:
        raise ConfigError(
            f"db check reads PostgreSQL tables; the store {settings.store_url!r} is the "
            "embedded DuckDB file (give --store postgresql://...)"
        )
    rows = []
    try:
        for spec in DATASETS.values():
            label = opened.layout.mapping(spec).label
            try:
                opened.check_table(spec)
            except ExportError as exc:
                rows.append({"dataset": spec.name, "table": label, "error": str(exc)})
            else:
                rows.append({"dataset": spec.name, "table": label, "error": None})
    finally:
        opened.close()
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            click.echo(f"{row['dataset']}: {row['error'] or row['table'] + ' ok'}")
    return 1 if any(row["error"] for row in rows) else 0


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
