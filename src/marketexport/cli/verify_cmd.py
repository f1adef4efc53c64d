"""``marketexport verify``: check an export against its manifest."""

from __future__ import annotations

from pathlib import Path

import click

from ..export.verify import verify_export
from .output import print_json


@click.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_command(path: Path, as_json: bool) -> int:
    """Re-read the export at PATH (or its manifest) and check every recorded figure."""
    report = verify_export(path)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        click.echo(f"OK {report.path}: {', '.join(report.checked)}")
    else:
        for problem in report.problems:
            click.echo(f"MISMATCH {report.path}: {problem}", err=True)
    return 0 if report.ok else 1


def register(cli: click.Group) -> None:
    cli.add_command(verify_command)
