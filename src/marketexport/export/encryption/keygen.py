"""Creating keys of each kind, and describing them by public fingerprints only."""

from __future__ import annotations

import os

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ...errors import ConfigError
from .agekeys import X25519Identity
from .fernet import fernet_id, parse_fernet_keys
from .keys import (
    KeyDirectory,
    KeyInfo,
    Secret,
    key_id,
    parse_aes_key,
    replace_private,
    write_private,
)
from .rsa2048 import MIN_BITS, fingerprint, load_private
from .signing import SigningKey, read_public_key

MAX_BITS = 16384  # larger keys take hours to generate and gain nothing


def create_key(directory: KeyDirectory, kind: str, name: str, bits: int) -> None:
    """Write a new key of ``kind`` (and its public half, if it has one)."""
    private = directory.private_path(name, kind)
    public = directory.public_path(name, kind)
    if kind == "aes256":
        write_private(private, os.urandom(32).hex().encode() + b"\n")
    elif kind == "fernet":
        write_private(private, Fernet.generate_key() + b"\n")
    elif kind == "rsa":
        if not MIN_BITS <= bits <= MAX_BITS:
            raise ConfigError(
                f"RSA key size {bits} is out of range (from {MIN_BITS} to {MAX_BITS} bits)",
                bits=bits,
            )
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        assert public is not None
        write_private(private, pem)
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        write_private(public, public_pem, mode=0o644)
    elif kind == "signing":
        signing = SigningKey.generate()
        assert public is not None
        write_private(private, signing.to_text().encode())
        write_private(public, signing.public.to_text().encode(), mode=0o644)
    elif kind == "age":
        identity = X25519Identity.generate()
        recipient = str(identity.recipient)
        text = f"# public key: {recipient}\n{identity.to_text()}\n"
        assert public is not None
        write_private(private, text.encode())
        write_private(public, (recipient + "\n").encode(), mode=0o644)


def describe_key(directory: KeyDirectory, name: str, kind: str) -> KeyInfo:
    """Name, kind and fingerprints; reads private files only through the permission check."""
    private = directory.private_path(name, kind)
    public = directory.public_path(name, kind)
    prints: tuple[str, ...]
    if kind == "aes256":
        secret = parse_aes_key(directory.private_bytes(name, kind), str(private))
        prints = (key_id(secret.reveal()),)
    elif kind == "fernet":
        ring = parse_fernet_keys(directory.private_bytes(name, kind), str(private))
        prints = tuple(fernet_id(key) for key in ring)
    elif kind == "rsa":
        loaded = load_private(private)
        prints = (f"{fingerprint(loaded.public_key())} ({loaded.key_size} bits)",)
    elif kind == "signing":
        assert public is not None
        prints = (read_public_key(public).fingerprint,)
    else:
        assert public is not None
        prints = (public.read_text(encoding="utf-8").strip(),)
    return KeyInfo(name, kind, prints, private, public)


def rotate_fernet(directory: KeyDirectory, name: str) -> KeyInfo:
    """Put a new primary key first in a Fernet key file; older keys still decrypt."""
    kind = directory.kind_of(name)
    if kind != "fernet":
        raise ConfigError(f"only fernet keys rotate; {name!r} is a {kind} key", key=name)
    path = directory.private_path(name, kind)
    ring = parse_fernet_keys(directory.private_bytes(name, kind), str(path))
    fresh = Secret(Fernet.generate_key())
    lines = [key.reveal() for key in (fresh, *ring)]
    replace_private(path, b"\n".join(lines) + b"\n")
    return describe_key(directory, name, kind)
