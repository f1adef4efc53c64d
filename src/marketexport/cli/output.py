"""Shared output helpers for commands: JSON printing and progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from ..export.pipeline import Progress as ExportProgress


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def is_terminal() -> bool:
    return sys.stderr.isatty()


class _RateColumn(TextColumn):
    def __init__(self) -> None:
        super().__init__("{task.fields[rate]}")


@contextmanager
def export_progress(label: str, enabled: bool | None = None) -> Iterator[Any]:
    """A progress callback that draws a bar on a terminal and does nothing elsewhere."""
    if enabled is None:
        enabled = is_terminal()
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with bar:
        task = bar.add_task(label, total=None, rate="")

        def update(progress: ExportProgress) -> None:
            bar.update(
                task,
                completed=progress.rows_done,
                total=max(progress.rows_total, progress.rows_done) or None,
                rate=f"{progress.rows_per_s:,.0f} rows/s",
            )

        yield update
