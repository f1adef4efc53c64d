"""``marketexport schema``: show a dataset's columns, types and units."""

from __future__ import annotations

import click

from ..datasets import get_dataset
from .output import print_json


@click.command("schema")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def schema_command(dataset: str, as_json: bool) -> None:
    """Show DATASET's columns with kind, unit and meaning, and its primary key."""
    spec = get_dataset(dataset)
    if as_json:
        print_json(
            {
                "dataset": spec.name,
                "key": list(spec.key),
                "time_column": spec.time_column,
                "columns": [
                    {
                        "name": c.name,
                        "kind": c.kind,
                        "type": str(c.arrow_type),
                        "unit": c.unit,
                        "nullable": c.nullable,
                        "doc": c.doc,
                    }
                    for c in spec.columns
                ],
            }
        )
        return
    click.echo(f"{spec.name}: {spec.doc}")
    click.echo(f"primary key: {', '.join(spec.key)}")
    for c in spec.columns:
        unit = f" [{c.unit}]" if c.unit else ""
        click.echo(f"  {c.name:<24} {c.kind:<8}{unit} {c.doc}")


def register(cli: click.Group) -> None:
    cli.add_command(schema_command)
