"""``tasks submit --split-by day|symbol|rows:N [--join]``: a split export's options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..config import Settings
from ..errors import ConfigError
from ..request import ExportRequest
from ..tasks.split import split_request
from ..tasks.split_plan import SPLIT_KINDS, check_split, parse_split


def split_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --split-by and --join to a command."""
    command = click.option(
        "--join",
        is_flag=True,
        help="Also lay the parts end to end into one file (JSON Lines with gzip, zstd, "
        "lz4 or no codec; split by day or rows).",
    )(command)
    return click.option(
        "--split-by",
        help=f"Run the export as parts in parallel on Celery workers: {SPLIT_KINDS}.",
    )(command)


def split_body(
    settings: Settings, request: ExportRequest, options: dict[str, Any]
) -> ExportRequest | dict[str, Any]:
    """The request to queue: as is, or with its split when --split-by was given."""
    text = options.pop("split_by", None)
    join = bool(options.pop("join", False))
    if text is None:
        if join:
            raise ConfigError("--join needs --split-by")
        return request
    if settings.executor != "celery":
        raise ConfigError(
            f"--split-by runs parts on Celery workers, but the executor is "
            f'{settings.executor!r} (set executor = "celery", or export it whole)',
            setting="executor",
        )
    split = parse_split(text, concat=join)
    check_split(request, split)
    return split_request(request, split)
