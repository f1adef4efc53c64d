"""``marketexport schema``: show a dataset's columns, types and units."""

from __future__ import annotations

import click

from ..datasets import DATASETS, Dataset, get_dataset
from ..export.formats.xsd import dataset_xsd
from .output import print_json


def markdown_table(spec: Dataset) -> str:
    """The dataset as a Markdown table: column, type, unit, meaning; key columns marked."""
    lines = [
        f"**{spec.name}**: {spec.doc}. Key: {', '.join(spec.key)}.",
        "",
        "| column | type | unit | meaning |",
        "|---|---|---|---|",
    ]
    for c in spec.columns:
        kind = "time (UTC)" if c.kind == "time" else c.kind
        if not c.nullable:
            kind += ", required"
        lines.append(f"| `{c.name}` | {kind} | {c.unit or '-'} | {c.doc} |")
    return "\n".join(lines)


def markdown_tables() -> str:
    """Every dataset's table, as the README shows them."""
    return "\n\n".join(markdown_table(spec) for spec in DATASETS.values())


@click.command("schema")
@click.argument("dataset", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--markdown", is_flag=True, help="Print Markdown tables (all datasets if none).")
@click.option(
    "--xsd", "as_xsd", is_flag=True, help="Print the XML Schema (XSD) of DATASET's XML export."
)
def schema_command(dataset: str | None, as_json: bool, markdown: bool, as_xsd: bool) -> None:
    """Show DATASET's columns with kind, unit and meaning, and its primary key."""
    if as_xsd and dataset is not None:
        click.echo(dataset_xsd(get_dataset(dataset)), nl=False)
        return
    if markdown:
        click.echo(markdown_table(get_dataset(dataset)) if dataset else markdown_tables())
        return
    if dataset is None:
        raise click.UsageError("give a DATASET (one of: " + ", ".join(DATASETS) + ")")
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
