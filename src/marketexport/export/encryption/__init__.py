"""Encryption stages: one module per scheme, registered here.

- ``aes256``: AES-256-GCM in the C2SP chunked-encryption construction, in marketexport's
  container (``container.py``); named key, key file or Argon2id-stretched passphrase
- ``rsa2048``: the same payload, its per-file key wrapped with RSA-OAEP for each recipient
- ``fernet``: framed Fernet tokens over bounded chunks (AES-128-CBC + HMAC-SHA256)
- ``age``: a standard age v1 file that ``age --decrypt`` opens

Every stage has the verbs ``write(chunk) -> bytes``, ``flush() -> bytes`` and ``close()``.
Decryptors release a chunk only after it authenticates; the end of the stream is proven only
when ``flush`` returns, so callers write plaintext to a temporary file and rename it then.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError, EncryptionError, ExportError, RequestError
from .aes256 import AES256
from .age import AGE, AgeDecryptor, identities_for
from .base import ByteStage, DecryptionKeys, EncryptionSpec, Encryptor, Scheme
from .container import MAGIC, parse_preamble
from .fernet import FERNET
from .keys import KINDS, KeyDirectory, KeyRing, Secret
from .rsa2048 import RSA2048

__all__ = [
    "SCHEMES",
    "SNIFF_BYTES",
    "ByteStage",
    "DecryptionKeys",
    "Decryptor",
    "EncryptionSpec",
    "Encryptor",
    "KeyDirectory",
    "KeyRing",
    "Scheme",
    "Secret",
    "check_encryption",
    "check_key_names",
    "get_scheme",
    "open_encryptor",
    "sniff_scheme",
]

SCHEMES: dict[str, Scheme] = {s.name: s for s in (AES256, RSA2048, FERNET, AGE)}
_AGE_MAGIC = b"age-encryption.org/"
# The first bytes that tell a container from an age file (see sniff_scheme).
SNIFF_BYTES = max(len(MAGIC), len(_AGE_MAGIC))


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``, or a ConfigError naming the valid ones."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ConfigError(
            f"unknown encryption scheme {name!r} (expected one of: {', '.join(SCHEMES)})",
            scheme=name,
        ) from None


def check_encryption(spec: EncryptionSpec) -> EncryptionSpec:
    """Validate a spec without touching any secret (used by build_request)."""
    get_scheme(spec.scheme).check(spec)
    return spec


# The kind of key directory key that each scheme's --key names (rsa2048 takes recipients).
_KEY_KIND = {"aes256": "aes256", "fernet": "fernet", "age": "age"}


def check_key_names(
    encryption: EncryptionSpec | None,
    sign_key: str | None,
    keys: KeyRing,
    *,
    list_names: bool = True,
) -> None:
    """Refuse key names that the key directory does not hold as keys of the needed kind.

    For requests that run later (tasks, schedules): they are refused when submitted rather
    than failing at every run. Only names are read and shown, never a key's content; with
    ``list_names`` false (the HTTP API: the server's key names are not its users') the
    message names only the key that was asked for.
    """
    wanted: list[tuple[str, str, str]] = []
    if encryption is not None and encryption.key and encryption.scheme in _KEY_KIND:
        wanted.append((encryption.key, _KEY_KIND[encryption.scheme], "encryption key"))
    if sign_key:
        wanted.append((sign_key, "signing", "signing key"))
    elif keys.signing_key:
        wanted.append((keys.signing_key, "signing", "default signing key (setting signing_key)"))

    for name, kind, role in wanted:
        if keys.directory.private_path(name, kind).exists():
            continue
        present = keys.directory.names(kind)
        listed = ", ".join(present) if present else "none"
        found = next(
            (other for other in KINDS if keys.directory.private_path(name, other).exists()),
            None,
        )
        problem = (
            f"{role} {name!r} is of kind {found}, not {kind}"
            if found
            else f"unknown {role} {name!r}: the key directory has no such key"
        )
        if not list_names:
            raise RequestError(f"{problem} (expected the name of a key of kind {kind})", key=name)
        raise RequestError(
            f"{problem} ({kind} keys in the key directory: {listed}; create one with "
            f"'marketexport keys generate {kind} NAME')",
            key=name,
        )


def open_encryptor(spec: EncryptionSpec, keys: KeyRing, content: dict[str, Any]) -> Encryptor:
    """The encrypting stage for ``spec``; ``content`` (format, compression) goes in the header."""
    return get_scheme(spec.scheme).encryptor(spec, keys, content)


def sniff_scheme(head: bytes) -> str | None:
    """'container', 'age' or None, from a file's first bytes."""
    if head.startswith(MAGIC):
        return "container"
    if head.startswith(_AGE_MAGIC):
        return "age"
    return None


class Decryptor:
    """Byte stage that recognises the file (container or age) and opens it with the keys
    offered. Plaintext comes out only after each chunk authenticates; ``header`` holds the
    container header once it has been read (None for age files)."""

    def __init__(self, offered: DecryptionKeys, keys: KeyRing) -> None:
        self._offered = offered
        self._keys = keys
        self._head = bytearray()
        self._inner: ByteStage | None = None
        self.header: dict[str, Any] | None = None
        self.scheme: str | None = None

    def _start(self, final: bool) -> bool:
        size = SNIFF_BYTES
        if len(self._head) < size and not final:
            return False
        kind = sniff_scheme(bytes(self._head[:size]))
        if kind is None:
            raise EncryptionError(
                "not an encrypted marketexport file nor an age file (unknown first bytes)"
            )
        if kind == "age":
            self.scheme = "age"
            self._inner = AgeDecryptor(identities_for(self._offered, self._keys))
            return True
        parsed = parse_preamble(self._head)
        if parsed is None:
            if final:
                raise EncryptionError("the encrypted file is cut off inside its header")
            return False
        header, length = parsed
        scheme = get_scheme(header["scheme"])
        if scheme.decryptor is None:
            raise EncryptionError(f"scheme {scheme.name!r} does not use the container")
        self.header, self.scheme = header, scheme.name
        preamble = bytes(self._head[:length])
        try:
            self._inner = scheme.decryptor(header, preamble, self._offered, self._keys)
        except ExportError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A header that parses as JSON but lacks or garbles a field: damage, not a bug.
            raise EncryptionError(
                f"container header has a missing or malformed field ({type(exc).__name__}: "
                f"{exc}); damaged file"
            ) from None
        del self._head[:length]
        return True

    def write(self, chunk: bytes) -> bytes:
        if self._inner is not None:
            return self._inner.write(chunk)
        self._head += chunk
        if not self._start(final=False):
            return b""
        assert self._inner is not None
        rest, self._head = bytes(self._head), bytearray()
        return self._inner.write(rest)

    def flush(self) -> bytes:
        if self._inner is None:
            self._start(final=True)
            assert self._inner is not None
            rest, self._head = bytes(self._head), bytearray()
            return self._inner.write(rest) + self._inner.flush()
        return self._inner.flush()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
