"""``marketexport export``: one export in the foreground."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..delivery import deliver, parse_destination
from ..delivery.local import check_writable
from ..export.compression import CODECS
from ..export.encryption import KeyRing
from ..export.formats import FORMATS
from ..export.pipeline import ExportResult, run_export
from ..request import ExportRequest, build_request
from ..store import open_store
from . import AppContext, pass_app
from .encryption_options import encryption_decorators, encryption_from_options
from .output import export_progress, print_json
from .params import NonEmptyPath

FORMAT_OPTIONS = {"csv_safe_for_spreadsheets"}


def export_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that describe an export request, shared by export, tasks and schedules."""
    decorators = [
        click.argument("dataset"),
        click.option("--exchange", "exchanges", multiple=True, help="Exchange (repeatable)."),
        click.option("--symbol", "symbols", multiple=True, help="Symbol BASE/QUOTE (repeatable)."),
        click.option("--start", help="Start of the range, inclusive (date, ISO time, epoch ms)."),
        click.option("--end", help="End of the range, exclusive."),
        click.option(
            "--where",
            multiple=True,
            help="Condition 'col OP value' or 'col in (a, b)' (repeatable).",
        ),
        click.option("--columns", help="Comma-separated columns to export (default: all)."),
        click.option(
            "--format",
            "fmt",
            required=True,
            help=f"Output format: {', '.join(FORMATS)}.",
        ),
        click.option(
            "--compression",
            default="none",
            show_default=True,
            help=f"Compression: {', '.join(CODECS)}.",
        ),
        click.option(
            "--csv-safe-for-spreadsheets",
            is_flag=True,
            help="CSV: prefix text cells starting with = + - @ tab CR with a quote.",
        ),
        *encryption_decorators(),
        click.option(
            "--destination",
            help="Deliver the finished export to a directory, sftp://user@host[:port]/path "
            "or s3://bucket/prefix (credentials from the key directory, the environment or "
            "the SSH agent; never in the URL).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def request_from_options(options: dict[str, Any]) -> ExportRequest:
    """Build the request from the shared export options (validates everything)."""
    extra: dict[str, Any] = {}
    if options.get("csv_safe_for_spreadsheets"):
        extra["csv_safe_for_spreadsheets"] = True
    return build_request(
        dataset=options["dataset"],
        format=options["fmt"],
        compression=options["compression"],
        exchanges=options.get("exchanges") or (),
        symbols=options.get("symbols") or (),
        start=options.get("start"),
        end=options.get("end"),
        where=options.get("where") or (),
        columns=options.get("columns"),
        options=extra,
        encryption=encryption_from_options(options),
        sign_key=options.get("sign"),
        destination=options.get("destination"),
    )


def result_summary(result: ExportResult) -> dict[str, Any]:
    return {
        "path": str(result.path),
        "manifest_path": str(result.manifest_path),
        "sums_path": str(result.sums_path),
        "manifest": result.manifest.to_dict(),
    }


@click.command("export")
@export_options
@click.option(
    "--output",
    type=NonEmptyPath(path_type=Path, expected="a directory"),
    help="Output directory.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@pass_app
def export_command(app: AppContext, output: Path | None, as_json: bool, **options: Any) -> None:
    """Export DATASET from the store to a file, with a manifest beside it."""
    request = request_from_options(options)
    settings = app.settings
    output_dir = output if output is not None else settings.export_path
    if request.destination:
        spec = parse_destination(request.destination)
        if spec.kind == "local":
            check_writable(Path(spec.path))
    store = open_store(settings, read_only=True)
    try:
        with export_progress(f"{request.dataset} -> {request.format}") as progress:
            result = run_export(
                request,
                store,
                output_dir=output_dir,
                batch_rows=settings.batch_rows,
                threads=settings.cpu_threads,
                progress=progress,
                keys=KeyRing.from_settings(settings),
            )
    finally:
        store.close()
    if request.destination:
        receipt = deliver(result, request.destination, settings)
        click.echo(f"delivered {len(receipt.files)} files to {receipt.destination}", err=True)
    if as_json:
        print_json(result.manifest.to_dict())
    else:
        click.echo(f"{result.manifest.rows} rows -> {result.path}")


def register(cli: click.Group) -> None:
    cli.add_command(export_command)
