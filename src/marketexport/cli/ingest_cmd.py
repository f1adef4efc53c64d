"""``marketexport ingest``: import exchange files into the store."""

from __future__ import annotations

from pathlib import Path

import click

from ..ingest import Hints, check_paths, ingest_paths
from ..store import open_store
from . import AppContext, pass_app
from .output import print_json
from .params import NonEmptyPath


@click.command("ingest")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=NonEmptyPath(path_type=Path, expected="files or directories"),
)
@click.option("--exchange", help="Exchange for files that do not say it.")
@click.option("--symbol", help="Symbol for files that do not say it (BTC/USDT, BTCUSDT...).")
@click.option("--account", default="default", show_default=True, help="Account label.")
@click.option("--json", "as_json", is_flag=True, help="Print per-file counts as JSON.")
@pass_app
def ingest_command(
    app: AppContext,
    paths: tuple[Path, ...],
    exchange: str | None,
    symbol: str | None,
    account: str,
    as_json: bool,
) -> int:
    """Import every file under PATHS (files or directories) into the store."""
    hints = Hints(exchange, symbol, account)
    check_paths(paths)
    store = open_store(app.settings)
    try:
        reports = ingest_paths(list(paths), store, hints)
    finally:
        store.close()
    if not reports:
        shown = ", ".join(str(path) for path in paths)
        click.echo(
            f"no files found under {shown} (hidden files and folders and .CHECKSUM, .md and "
            ".txt files are skipped)",
            err=True,
        )
    if as_json:
        print_json([report.to_dict() for report in reports])
    else:
        for report in reports:
            if report.ok:
                counts = report.to_dict()
                click.echo(
                    f"{report.path}: {counts['rows_read']} read, {counts['rows_added']} added, "
                    f"{counts['rows_skipped']} duplicates ({', '.join(report.datasets)})"
                )
            else:
                click.echo(f"SourceError: {report.error}", err=True)
    refused = sum(1 for report in reports if not report.ok)
    if refused:
        rest = "; the others were imported" if refused < len(reports) else "; nothing imported"
        click.echo(f"{refused} of {len(reports)} files refused{rest}.", err=True)
        return 1
    return 0


def register(cli: click.Group) -> None:
    cli.add_command(ingest_command)
