"""What every encryption scheme is: its request spec, its stages and what decryption offers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .keys import KeyRing


class ByteStage(Protocol):
    """A streaming byte stage: ``write`` returns what can be released now, ``flush`` ends."""

    def write(self, chunk: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def close(self) -> None: ...


class Encryptor(ByteStage, Protocol):
    def describe(self) -> dict[str, Any]:
        """What the manifest records: scheme, key ids or recipient fingerprints; no secret."""
        ...


@dataclass(frozen=True)
class EncryptionSpec:
    """How an export is encrypted. Holds names and paths only, never key material."""

    scheme: str
    key: str | None = None  # a key name in the key directory
    key_file: str | None = None
    passphrase_env: str | None = None  # the name of the variable, not its value
    recipients: tuple[str, ...] = ()  # public key files, or age1... recipients

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "key": self.key,
            "key_file": self.key_file,
            "passphrase_env": self.passphrase_env,
            "recipients": list(self.recipients),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncryptionSpec:
        return cls(
            scheme=data["scheme"],
            key=data.get("key"),
            key_file=data.get("key_file"),
            passphrase_env=data.get("passphrase_env"),
            recipients=tuple(data.get("recipients") or ()),
        )


@dataclass(frozen=True)
class DecryptionKeys:
    """What a person offers to open a file: key names, a key file, an identity, a passphrase
    variable. Any may be empty; the file's header says which one is needed."""

    keys: tuple[str, ...] = ()
    key_file: str | None = None
    identity: str | None = None
    passphrase_env: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.keys or self.key_file or self.identity or self.passphrase_env)


# (header, preamble bytes, offered keys, key ring) -> decrypting stage for the rest
DecryptorFactory = Callable[[dict[str, Any], bytes, DecryptionKeys, KeyRing], ByteStage]


@dataclass(frozen=True)
class Scheme:
    """An encryption scheme: its name, file extension, and how to build its stages."""

    name: str
    extension: str
    summary: str
    check: Callable[[EncryptionSpec], None]
    encryptor: Callable[[EncryptionSpec, KeyRing, dict[str, Any]], Encryptor]
    decryptor: DecryptorFactory | None = None  # None: not a marketexport container
