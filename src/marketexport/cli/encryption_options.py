"""Encryption and signing options shared by export, tasks and schedules (through
``export_options``), and the key options of ``decrypt`` and ``verify``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..export.encryption import SCHEMES, DecryptionKeys, EncryptionSpec
from .params import NonEmptyPath


def encryption_decorators() -> list[Callable[..., Any]]:
    """The export-side options: scheme, key source, recipients and signing key."""
    return [
        click.option(
            "--encrypt",
            "encrypt",
            help=f"Encrypt the file: {', '.join(SCHEMES)} (age: opened by 'age --decrypt').",
        ),
        click.option("--key", "key", help="Key name in the key directory (aes256, fernet, age)."),
        click.option(
            "--key-file",
            "key_file",
            type=NonEmptyPath(dir_okay=False, expected="a key file"),
            help="Key file (32-byte AES key, or Fernet keys); must be mode 0600.",
        ),
        click.option(
            "--passphrase-env",
            "passphrase_env",
            metavar="VAR",
            help="Name of the environment variable holding the passphrase (never the value).",
        ),
        click.option(
            "--recipient",
            "recipients",
            multiple=True,
            help="Recipient: RSA public key .pem (rsa2048) or age1... / file (age). Repeatable.",
        ),
        click.option("--sign", "sign", metavar="KEY", help="Sign manifest and SHA256SUMS."),
    ]


def encryption_from_options(options: dict[str, Any]) -> EncryptionSpec | None:
    """The EncryptionSpec the options ask for, or None (validated later by build_request)."""
    scheme = options.get("encrypt")
    if not scheme:
        stray = [
            flag
            for flag, name in (
                ("--key", "key"),
                ("--key-file", "key_file"),
                ("--passphrase-env", "passphrase_env"),
                ("--recipient", "recipients"),
            )
            if options.get(name)
        ]
        if stray:
            raise click.UsageError(f"{', '.join(stray)} given without --encrypt SCHEME")
        return None
    return EncryptionSpec(
        scheme=scheme,
        key=options.get("key"),
        key_file=options.get("key_file"),
        passphrase_env=options.get("passphrase_env"),
        recipients=tuple(options.get("recipients") or ()),
    )


def decryption_key_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--key (repeatable), --key-file, --identity and --passphrase-env for opening files."""
    decorators = [
        click.option(
            "--key", "keys", multiple=True, help="Key name in the key directory (repeatable)."
        ),
        click.option(
            "--key-file",
            type=NonEmptyPath(dir_okay=False, expected="a key file"),
            help="AES or Fernet key file.",
        ),
        click.option(
            "--identity",
            type=NonEmptyPath(dir_okay=False, expected="a private key file"),
            help="Private key: RSA .pem (rsa2048) or age identity file (age).",
        ),
        click.option(
            "--passphrase-env",
            metavar="VAR",
            help="Name of the environment variable holding the passphrase.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def offered_keys(options: dict[str, Any]) -> DecryptionKeys:
    return DecryptionKeys(
        keys=tuple(options.get("keys") or ()),
        key_file=options.get("key_file"),
        identity=options.get("identity"),
        passphrase_env=options.get("passphrase_env"),
    )
