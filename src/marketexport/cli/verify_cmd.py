"""``marketexport verify``: check an export against its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..export.encryption import KeyRing
from ..export.verify import verify_export
from . import AppContext, pass_app
from .encryption_options import decryption_key_options, offered_keys
from .output import print_json
from .params import NonEmptyPath


@click.command("verify")
@click.argument(
    "path", type=NonEmptyPath(path_type=Path, dir_okay=False, expected="an export or its manifest")
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--public-key",
    type=NonEmptyPath(path_type=Path, dir_okay=False, expected="a minisign .pub file"),
    help="minisign public key: check the signatures of the manifest and SHA256SUMS.",
)
@decryption_key_options
@pass_app
def verify_command(
    app: AppContext, path: Path, as_json: bool, public_key: Path | None, **options: Any
) -> int:
    """Re-read the export at PATH (or its manifest) and check every recorded figure.

    An encrypted export's file checksum is checked without a key; with a key, identity or
    passphrase it is decrypted as a stream and its plaintext checksum and rows checked too.
    A signed manifest is checked with --public-key, or with the key directory's key that it
    names; without either, the output says the signature was not checked (exit code 0 still
    means only that the file matches its manifest).
    """
    offered = offered_keys(options)
    report = verify_export(
        path,
        keys=KeyRing.from_settings(app.settings),
        offered=None if offered.is_empty else offered,
        public_key=public_key,
    )
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        click.echo(f"OK {report.path}: {', '.join(report.checked)}")
        for skipped in report.skipped:
            click.echo(f"not checked: {skipped}")
    else:
        for problem in report.problems:
            click.echo(f"MISMATCH {report.path}: {problem}", err=True)
    return 0 if report.ok else 1


def register(cli: click.Group) -> None:
    cli.add_command(verify_command)
