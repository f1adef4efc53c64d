"""``marketexport keys``: create and list the keys of the key directory."""

from __future__ import annotations

import click

from ..export.encryption.keygen import rotate_fernet
from ..export.encryption.keys import KINDS, KeyDirectory
from . import AppContext, pass_app
from .output import print_json


@click.group("keys")
def keys_group() -> None:
    """Keys for encryption and signing (names, kinds, fingerprints; never secrets)."""


@keys_group.command("generate")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option("--bits", default=3072, show_default=True, help="RSA key size (at least 2048).")
@click.option("--json", "as_json", is_flag=True, help="Print the new key's description.")
@pass_app
def generate_command(app: AppContext, kind: str, name: str, bits: int, as_json: bool) -> None:
    """Create a new KIND key called NAME (files 0600 in a 0700 directory; never replaced)."""
    info = KeyDirectory(app.settings.key_path).generate(kind, name, bits=bits)
    if as_json:
        print_json(info.to_dict())
        return
    click.echo(f"{info.kind} key {info.name}: {', '.join(info.fingerprints)}")
    if info.public_path is not None:
        click.echo(f"public key (share this): {info.public_path}")


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """List the keys: name, kind and fingerprints."""
    found = KeyDirectory(app.settings.key_path).list()
    if as_json:
        print_json([info.to_dict() for info in found])
        return
    if not found:
        click.echo(f"no keys in {app.settings.key_path}")
    for info in found:
        click.echo(f"{info.name:<20} {info.kind:<8} {', '.join(info.fingerprints)}")


@keys_group.command("rotate")
@click.argument("name")
@pass_app
def rotate_command(app: AppContext, name: str) -> None:
    """Give fernet key NAME a new primary key; the older keys still decrypt."""
    info = rotate_fernet(KeyDirectory(app.settings.key_path), name)
    click.echo(f"fernet key {info.name}: {', '.join(info.fingerprints)} (first encrypts)")


def register(cli: click.Group) -> None:
    cli.add_command(keys_group)
