"""``marketexport decrypt``: an encrypted export back to its plaintext, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..export.encryption import KeyRing
from ..export.encryption.decrypt import decrypt_file
from . import AppContext, pass_app
from .encryption_options import decryption_key_options, offered_keys
from .output import print_json
from .params import NonEmptyPath


@click.command("decrypt")
@click.argument("file", type=NonEmptyPath(path_type=Path, expected="an encrypted export"))
@decryption_key_options
@click.option(
    "-o",
    "--output",
    type=NonEmptyPath(path_type=Path, dir_okay=False, expected="a file name"),
    help="Plaintext file to write.",
)
@click.option("--decompress", is_flag=True, help="Also undo the export's compression.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def decrypt_command(
    app: AppContext,
    file: Path,
    output: Path | None,
    decompress: bool,
    force: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Decrypt FILE (marketexport container or age file) as a stream.

    The output appears only after the last chunk has authenticated; a changed, truncated or
    reordered file, or a wrong key, leaves nothing behind.
    """
    result = decrypt_file(
        file,
        output,
        offered_keys(options),
        KeyRing.from_settings(app.settings),
        decompress=decompress,
        overwrite=force,
    )
    if as_json:
        print_json(
            {
                "path": str(result.path),
                "scheme": result.scheme,
                "bytes": result.bytes_written,
                "decompressed": result.decompressed_from,
            }
        )
    else:
        click.echo(f"{result.scheme} -> {result.path} ({result.bytes_written} bytes)")


def register(cli: click.Group) -> None:
    cli.add_command(decrypt_command)
