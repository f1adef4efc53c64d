"""``marketexport demo``: build a sample store and run the main job on it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from ..demo import load_demo
from ..export.pipeline import run_export
from ..export.verify import verify_export
from ..request import build_request
from ..store import open_store
from . import AppContext, pass_app
from .output import export_progress
from .params import NonEmptyPath

DEMO_EXPORTS = (
    ("ohlcv", "csv", "gzip", ("BTC/USDT",)),
    ("ohlcv", "parquet", "zstd", ()),
    ("trades", "jsonl", "zstd", ("ETH/BTC",)),
    ("trades", "json", "none", ("BTC/USDT",)),
)


@click.command("demo")
@click.option(
    "--output",
    type=NonEmptyPath(path_type=Path, expected="a directory"),
    help="Output directory.",
)
@pass_app
def demo_command(app: AppContext, output: Path | None) -> None:
    """Build a realistic sample store, export it in four formats and verify the files.

    The sample store is its own file (<data dir>/demo/store.duckdb), so that the demo never
    mixes its synthetic rows into a store that holds real data.
    """
    settings = replace(app.settings, store=str(app.settings.data_dir / "demo" / "store.duckdb"))
    store = open_store(settings)
    try:
        counts = load_demo(store)
    finally:
        store.close()
    click.echo(
        f"sample store {settings.store_url}: "
        + ", ".join(f"{rows} {name} rows" for name, rows in counts.items())
    )

    output_dir = output if output is not None else settings.export_path / "demo"
    store = open_store(settings, read_only=True)
    try:
        for dataset, fmt, codec, symbols in DEMO_EXPORTS:
            request = build_request(
                dataset=dataset,
                format=fmt,
                compression=codec,
                symbols=symbols,
                start="2025-01-01",
                end="2025-01-03",
            )
            with export_progress(f"{dataset} -> {fmt}") as progress:
                result = run_export(
                    request,
                    store,
                    output_dir=output_dir,
                    batch_rows=settings.batch_rows,
                    threads=settings.cpu_threads,
                    progress=progress,
                )
            report = verify_export(result.path)
            status = "verified" if report.ok else "VERIFY FAILED: " + "; ".join(report.problems)
            click.echo(f"{result.manifest.rows:>7} rows  {result.path}  ({status})")
    finally:
        store.close()
    click.echo(f"manifests beside each file; checksums in {output_dir / 'SHA256SUMS'}")
    click.echo(f"try: marketexport verify {result.path}")


def register(cli: click.Group) -> None:
    cli.add_command(demo_command)
