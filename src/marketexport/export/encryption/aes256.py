"""``aes256``: AES-256-GCM in the C2SP chunked-encryption construction, in the container.

The input key is a named 32-byte key, a 32-byte key file, or a passphrase (read from an
environment variable) stretched with Argon2id and a per-file salt kept in the header.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ...errors import ConfigError, EncryptionError
from .base import ByteStage, DecryptionKeys, EncryptionSpec, Scheme
from .chunked import ChunkedDecryptor, ChunkedEncryptor
from .container import PreambleStage, build_preamble
from .keys import KeyRing, Secret, check_env_name, check_name, key_id, parse_aes_key, read_private

# RFC 9106's second recommended setting: 3 passes over 64 MiB with 4 lanes.
ARGON2_ITERATIONS = 3
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_LANES = 4
# Limits applied to a header's parameters before stretching, so a forged header cannot make
# decryption allocate gigabytes or run for minutes.
MAX_MEMORY_KIB = 1024 * 1024
MAX_ITERATIONS = 16
SALT_BYTES = 16


def stretch_passphrase(
    passphrase: Secret,
    salt: bytes,
    iterations: int = ARGON2_ITERATIONS,
    memory_kib: int = ARGON2_MEMORY_KIB,
    lanes: int = ARGON2_LANES,
) -> Secret:
    """A 32-byte key from a passphrase with Argon2id."""
    kdf = Argon2id(salt=salt, length=32, iterations=iterations, lanes=lanes, memory_cost=memory_kib)
    return Secret(kdf.derive(passphrase.reveal()))


def check(spec: EncryptionSpec) -> None:
    given = [v for v in (spec.key, spec.key_file, spec.passphrase_env) if v]
    if len(given) != 1 or spec.recipients:
        raise ConfigError(
            "--encrypt aes256 needs exactly one of --key NAME, --key-file FILE or "
            "--passphrase-env VAR (and no --recipient)",
            scheme=spec.scheme,
        )
    if spec.key:
        check_name(spec.key)
    if spec.passphrase_env:
        check_env_name(spec.passphrase_env)


def named_aes_key(keys: KeyRing, name: str) -> Secret:
    kind = keys.directory.kind_of(name)
    if kind != "aes256":
        raise ConfigError(f"key {name!r} is a {kind} key, not an aes256 key", key=name)
    where = str(keys.directory.private_path(name, "aes256"))
    return parse_aes_key(keys.directory.private_bytes(name, "aes256"), where)


def encryptor(spec: EncryptionSpec, keys: KeyRing, content: dict[str, Any]) -> PreambleStage:
    check(spec)
    key_header: dict[str, Any]
    if spec.passphrase_env:
        salt = os.urandom(SALT_BYTES)
        input_key = stretch_passphrase(keys.passphrase(spec.passphrase_env), salt)
        key_header = {
            "type": "passphrase",
            "kdf": "argon2id",
            "salt": base64.b64encode(salt).decode(),
            "iterations": ARGON2_ITERATIONS,
            "memory_kib": ARGON2_MEMORY_KIB,
            "lanes": ARGON2_LANES,
        }
    elif spec.key:
        input_key = named_aes_key(keys, spec.key)
        key_header = {"type": "key", "name": spec.key, "id": key_id(input_key.reveal())}
    else:
        assert spec.key_file is not None
        path = Path(spec.key_file)
        input_key = parse_aes_key(read_private(path), str(path))
        key_header = {"type": "key", "id": key_id(input_key.reveal())}
    header = {
        "scheme": "aes256",
        "payload": "c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM",
        "key": key_header,
        "content": content,
    }
    preamble = build_preamble(header)
    shown = {k: v for k, v in key_header.items() if k in ("type", "name", "id", "kdf")}
    description = {"scheme": "aes256", "container": 1, "payload": header["payload"], "key": shown}
    return PreambleStage(preamble, ChunkedEncryptor(input_key.reveal(), preamble), description)


def _candidate_keys(
    offered: DecryptionKeys, keys: KeyRing, header_key: dict[str, Any]
) -> list[Secret]:
    found = [named_aes_key(keys, name) for name in offered.keys]
    if offered.key_file:
        path = Path(offered.key_file)
        found.append(parse_aes_key(read_private(path), str(path)))
    if not found and header_key.get("name") and offered.is_empty:
        found.append(named_aes_key(keys, header_key["name"]))
    return found


def input_key_for(header: dict[str, Any], offered: DecryptionKeys, keys: KeyRing) -> Secret:
    """The input key that opens this header, chosen by key id, before any chunk is read."""
    header_key = header.get("key") or {}
    if header_key.get("type") == "passphrase":
        if not offered.passphrase_env:
            raise EncryptionError(
                "this file was encrypted with a passphrase: give --passphrase-env VAR"
            )
        if header_key.get("kdf") != "argon2id":
            raise EncryptionError(f"unknown passphrase KDF {header_key.get('kdf')!r}")
        iterations, memory_kib = int(header_key["iterations"]), int(header_key["memory_kib"])
        if iterations > MAX_ITERATIONS or memory_kib > MAX_MEMORY_KIB:
            raise EncryptionError("passphrase KDF parameters exceed the limits; damaged header")
        salt = base64.b64decode(header_key["salt"])
        passphrase = keys.passphrase(offered.passphrase_env)
        return stretch_passphrase(
            passphrase, salt, iterations, memory_kib, int(header_key["lanes"])
        )
    wanted = header_key.get("id")
    candidates = _candidate_keys(offered, keys, header_key)
    if not candidates:
        named = f" (key {header_key['name']!r})" if header_key.get("name") else ""
        raise EncryptionError(
            f"this file was encrypted with key {wanted}{named}: give --key NAME or --key-file"
        )
    for candidate in candidates:
        if key_id(candidate.reveal()) == wanted:
            return candidate
    offered_ids = ", ".join(key_id(c.reveal()) for c in candidates)
    raise EncryptionError(
        f"wrong key: the file was encrypted with key {wanted}, the key given is {offered_ids}; "
        "nothing was decrypted",
        wanted=wanted,
    )


def decryptor(
    header: dict[str, Any], preamble: bytes, offered: DecryptionKeys, keys: KeyRing
) -> ByteStage:
    return ChunkedDecryptor(input_key_for(header, offered, keys).reveal(), preamble)


AES256 = Scheme(
    name="aes256",
    extension=".mxe",
    summary="AES-256-GCM, C2SP chunked encryption; named key, key file or passphrase",
    check=check,
    encryptor=encryptor,
    decryptor=decryptor,
)
