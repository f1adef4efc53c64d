"""The ``marketexport`` command line.

Each module in this package adds its commands through ``register(cli)``; modules are found
automatically, so a new command group is one new module. Errors become one line on stderr
(``ClassName: message``) and an exit code: 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import signal
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..config import Settings, load_settings
from ..errors import ExportError, foreground_message
from .params import NonEmptyPath, NonEmptyText

logger = logging.getLogger("marketexport")


class AppContext:
    """What every command gets: the resolved settings and output preferences."""

    def __init__(self, overrides: dict[str, Any], config_file: Path | None) -> None:
        self._overrides = overrides
        self._config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._overrides, config_file=self._config_file)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="marketexport")
@click.option(
    "--data-dir",
    type=NonEmptyPath(path_type=Path, expected="a directory"),
    help="Data directory (store, tasks, keys, exports). Env: MARKETEXPORT_DATA_DIR.",
)
@click.option(
    "--store",
    type=NonEmptyText("a DuckDB file or a postgresql:// URL"),
    help="Store: a DuckDB file or a postgresql:// URL. Env: MARKETEXPORT_STORE.",
)
@click.option(
    "--task-store",
    type=NonEmptyText("a SQLite file or a postgresql:// URL"),
    help="Task store: a SQLite file or a postgresql:// URL shared by several machines. "
    "Env: MARKETEXPORT_TASK_STORE.",
)
@click.option(
    "--config",
    "config_file",
    type=NonEmptyPath(path_type=Path, expected="a marketexport.toml file"),
    help="A marketexport.toml file.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: Path | None,
    store: str | None,
    task_store: str | None,
    config_file: Path | None,
    verbose: int,
) -> None:
    """Export market and trading data as files you can trust."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"data_dir": data_dir, "store": store, "task_store": task_store}
    ctx.obj = AppContext(overrides, config_file)


def _register_all() -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(cli)


try:
    _register_all()
except KeyboardInterrupt:
    # Ctrl-C while the commands load (about a second on a busy machine): the same one line
    # and exit code as later, not a traceback from the middle of an import.
    sys.stderr.write("\nInterrupted.\n")
    raise SystemExit(130) from None


def fail(exc: ExportError) -> int:
    """Print the error as one line (what to do, not "will retry") and return its exit code."""
    click.echo(f"{type(exc).__name__}: {foreground_message(exc)}", err=True)
    return exc.exit_code


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM and SIGHUP unwind like Ctrl-C, so that a running export removes its
    # temporary file (run-worker installs its own graceful handler over this one).
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every error into a message and an exit code."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        result = cli.main(args=argv, prog_name="marketexport", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort as exc:
        # click has already ended the terminal's "^C" line; Ctrl-C (and SIGTERM/SIGHUP) says
        # the same word wherever it lands, a declined prompt says "Aborted."
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("Interrupted." if interrupted else "Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ExportError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback in the log
        logger.debug("unexpected error", exc_info=True)
        if os.environ.get("MARKETEXPORT_DEBUG"):
            raise
        click.echo(
            f"InternalError: {type(exc).__name__}: {exc} (set MARKETEXPORT_DEBUG=1 for details)",
            err=True,
        )
        return 1
    return int(result) if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
