"""The key directory: named keys kept on disk, private files readable by their owner only.

Layout (one name is unique across kinds; public halves may be shared freely):

- ``NAME.aes256``: 32-byte AES-256 key, 64 hex digits
- ``NAME.fernet``: Fernet keys, one per line, the first encrypts (rotation keeps the rest)
- ``NAME.rsa.pem`` / ``NAME.rsa.pub.pem``: RSA private key (PKCS#8) and public key
- ``NAME.minisign.key`` / ``NAME.minisign.pub``: Ed25519 signing key in minisign's format
- ``NAME.age`` / ``NAME.age.pub``: age X25519 identity and recipient

The directory is created 0700 and every file is written 0600 through a temporary name and a
rename. A private file that the group or others can read is refused, and nothing here ever
creates a key as a side effect: only :meth:`KeyDirectory.generate` does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, ExportError, KeyFileError, NotFoundError

KINDS = ("aes256", "rsa", "fernet", "signing", "age")
_PRIVATE_SUFFIX = {
    "aes256": ".aes256",
    "fernet": ".fernet",
    "rsa": ".rsa.pem",
    "signing": ".minisign.key",
    "age": ".age",
}
_PUBLIC_SUFFIX = {"rsa": ".rsa.pub.pem", "signing": ".minisign.pub", "age": ".age.pub"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
AES_KEY_BYTES = 32


class Secret:
    """Key material that never shows itself in a repr, a str, a log line or a pickle."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def key_id(material: bytes) -> str:
    """A public id for symmetric key material: an HMAC of a fixed label, never the key."""
    return "mx1:" + hmac.new(material, b"marketexport key id v1", hashlib.sha256).hexdigest()[:16]


def check_name(name: str) -> str:
    """Return ``name`` if it can name a key file, or raise naming the rule."""
    if not _NAME.match(name or ""):
        raise ConfigError(
            f"invalid key name {name!r} (expected 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)",
            key=name,
        )
    return name


def check_env_name(name: str) -> str:
    if not _ENV_NAME.match(name or ""):
        raise ConfigError(
            f"invalid environment variable name {name!r} (expected letters, digits and _ "
            "not starting with a digit; the passphrase itself never goes on the command line)",
            variable=name,
        )
    return name


def check_private_file(path: Path) -> None:
    """Refuse a private key file that the group or others may read or write."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotFoundError(f"key file {path} does not exist", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(
            f"key file {path} cannot be read: {exc.strerror}", path=str(path)
        ) from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"key file {path} is not a regular file", path=str(path))
    _refuse_public_key(path)
    if mode & 0o077:
        raise ConfigError(
            f"key file {path} is open to group or others (mode {stat.S_IMODE(mode):04o}); "
            f"refused: run 'chmod 600 {path}'",
            path=str(path),
            mode=f"{stat.S_IMODE(mode):04o}",
        )


_PUBLIC_MARKS = (
    b"-----BEGIN PUBLIC KEY-----",
    b"-----BEGIN RSA PUBLIC KEY-----",
    b"minisign public key",
    b"ssh-rsa ",
    b"ssh-ed25519 ",
)
_PRIVATE_MARKS = (b"PRIVATE KEY", b"SECRET KEY", b"secret key")
_AGE_RECIPIENT = re.compile(rb"^\s*(#[^\n]*\n\s*)*age1[0-9a-z]{20,}\s*$")


def _refuse_public_key(path: Path) -> None:
    """A public key given where a private one is needed is named as such: its world-readable
    mode is right for it, and "chmod 600" would be the wrong advice."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return  # the read that follows reports it
    if any(mark in head for mark in _PRIVATE_MARKS):
        return
    if not (any(mark in head for mark in _PUBLIC_MARKS) or _AGE_RECIPIENT.match(head)):
        return
    private = path.name.replace(".pub.pem", ".pem").removesuffix(".pub")
    beside = f" (for {path.name}, probably {private} beside it)" if private != path.name else ""
    raise ConfigError(
        f"key file {path} holds a public key; decrypting and signing need the private key"
        f"{beside}; public keys are for --recipient and --public-key",
        path=str(path),
    )


def read_private(path: Path) -> bytes:
    """The bytes of a private key file after the permission check."""
    check_private_file(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"key file {path} cannot be read: {exc.strerror}", path=str(path)
        ) from None


def parse_aes_key(data: bytes, where: str) -> Secret:
    """A 32-byte key from raw bytes, 64 hex digits or base64; any other length is refused."""
    if len(data) == AES_KEY_BYTES:
        return Secret(data)
    text = data.strip()
    decoded: bytes | None = None
    if text and re.fullmatch(rb"[0-9a-fA-F]+", text) and len(text) % 2 == 0:
        decoded = bytes.fromhex(text.decode("ascii"))
    else:
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is not None and len(decoded) == AES_KEY_BYTES:
        return Secret(decoded)
    found = len(decoded) if decoded is not None else len(data)
    raise KeyFileError(
        f"{where} does not hold a 32-byte AES-256 key (found {found} bytes; expected 32 raw "
        "bytes, 64 hex digits or base64 of 32 bytes; keys are never padded or cut)",
        path=where,
    )


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a new key file atomically with ``mode``; never replaces an existing file."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)  # fails if the target exists: keys are never overwritten
    except FileExistsError:
        raise ConfigError(f"key file {path} already exists; not replaced", path=str(path)) from None
    finally:
        temp.unlink(missing_ok=True)


def replace_private(path: Path, data: bytes) -> None:
    """Atomically replace an existing private key file (used by rotation)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


@dataclass(frozen=True)
class KeyInfo:
    """A key in the directory: its name, kind, public fingerprint(s) and files."""

    name: str
    kind: str
    fingerprints: tuple[str, ...]
    path: Path
    public_path: Path | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "fingerprints": list(self.fingerprints),
            "path": str(self.path),
            "public_path": str(self.public_path) if self.public_path else None,
        }


class KeyDirectory:
    """The named keys under one directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"KeyDirectory({str(self.path)!r})"

    def ensure(self) -> Path:
        """Create the directory 0700 if needed (only key generation calls this)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        return self.path

    def private_path(self, name: str, kind: str) -> Path:
        return self.path / (check_name(name) + _PRIVATE_SUFFIX[kind])

    def public_path(self, name: str, kind: str) -> Path | None:
        suffix = _PUBLIC_SUFFIX.get(kind)
        return self.path / (name + suffix) if suffix else None

    def kind_of(self, name: str) -> str:
        """The kind of the key called ``name``, or NotFoundError naming it.

        The message lists neither the directory nor its other keys: it reaches users of
        the HTTP API through a failed task, and the server's key names are not theirs.
        """
        check_name(name)
        for kind in KINDS:
            if self.private_path(name, kind).exists():
                return kind
        raise NotFoundError(
            f"no key named {name!r} in the key directory ('marketexport keys list' shows its "
            "keys; create one with 'marketexport keys generate KIND NAME')",
            key=name,
        )

    def private_bytes(self, name: str, kind: str | None = None) -> bytes:
        kind = kind or self.kind_of(name)
        return read_private(self.private_path(name, kind))

    def names(self, kind: str) -> list[str]:
        """The names of the directory's keys of ``kind``, sorted; no file is read."""
        if not self.path.is_dir():
            return []
        suffix = _PRIVATE_SUFFIX[kind]
        found = []
        for entry in self.path.iterdir():
            name = entry.name[: -len(suffix)]
            if entry.name.endswith(suffix) and _NAME.match(name) and "." not in name:
                found.append(name)
        return sorted(found)

    def list(self) -> list[KeyInfo]:
        """Every key in the directory (no secret is read beyond what a fingerprint needs)."""
        from .keygen import describe_key

        if not self.path.is_dir():
            return []
        found = []
        for entry in sorted(self.path.iterdir()):
            for kind in KINDS:
                suffix = _PRIVATE_SUFFIX[kind]
                name = entry.name[: -len(suffix)]
                if entry.name.endswith(suffix) and _NAME.match(name) and "." not in name:
                    try:
                        found.append(describe_key(self, name, kind))
                    except ExportError as exc:
                        # Listed all the same, so that a loose or damaged file is seen.
                        problem = f"unusable: {type(exc).__name__}: {exc}"
                        found.append(KeyInfo(name, kind, (problem,), entry))
                    break
        return found

    def generate(self, kind: str, name: str, *, bits: int = 3072) -> KeyInfo:
        """Create a new key; refuses to replace an existing name."""
        from .keygen import create_key, describe_key

        if kind not in KINDS:
            raise ConfigError(f"unknown key kind {kind!r} (expected one of: {', '.join(KINDS)})")
        check_name(name)
        if "." in name:
            raise ConfigError(f"invalid key name {name!r} (no '.' in key names)", key=name)
        self.ensure()
        for other in KINDS:
            if self.private_path(name, other).exists():
                raise ConfigError(
                    f"a key named {name!r} already exists ({other}); not replaced", key=name
                )
        create_key(self, kind, name, bits)
        return describe_key(self, name, kind)


@dataclass(frozen=True)
class KeyRing:
    """What an export or a decryption may draw keys from: the key directory, the
    environment (for passphrases named by variable) and the default signing key."""

    directory: KeyDirectory
    environ: Mapping[str, str]
    signing_key: str | None = None

    def __repr__(self) -> str:
        return f"KeyRing({self.directory!r}, signing_key={self.signing_key!r})"

    @classmethod
    def from_settings(cls, settings: object, environ: Mapping[str, str] | None = None) -> KeyRing:
        """The key ring of resolved Settings (``key_path`` and ``signing_key``)."""
        return cls(
            KeyDirectory(settings.key_path),  # type: ignore[attr-defined]
            dict(os.environ if environ is None else environ),
            getattr(settings, "signing_key", None),
        )

    def passphrase(self, variable: str) -> Secret:
        """The passphrase held by environment variable ``variable``."""
        check_env_name(variable)
        value = self.environ.get(variable)
        if not value:
            raise ConfigError(
                f"environment variable {variable!r} is not set or empty (it should hold the "
                "passphrase)",
                variable=variable,
            )
        return Secret(value.encode("utf-8"))
