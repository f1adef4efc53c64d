"""Opening an SSH connection for SFTP deliveries: host-key check, key file, agent.

The server's host key must already be in the known-hosts file: an unknown key and a changed
key are both refused, and there is no switch that skips the check. The client key comes
from the key directory (its passphrase, when it has one, from the environment variable
``MARKETEXPORT_SFTP_KEY_PASSPHRASE``) and from a running SSH agent; never from the URL.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from ..errors import DeliveryError
from ..export.encryption.keys import Secret, check_private_file
from .base import DestinationSpec, scrub

logger = logging.getLogger(__name__)

PASSPHRASE_VARIABLE = "MARKETEXPORT_SFTP_KEY_PASSPHRASE"
KEY_FILE_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")
CONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SshLogin:
    """Where the host keys and the client key come from; ``repr`` shows no secret."""

    known_hosts: Path
    key_path: Path | None
    passphrase: Secret | None
    use_agent: bool

    def describe(self) -> str:
        tried = [f"key file {self.key_path}"] if self.key_path else []
        if self.use_agent:
            tried.append("the SSH agent")
        return ", ".join(tried) or "nothing"


def resolve_login(settings: Any, environ: Mapping[str, str]) -> SshLogin:
    """The SSH login of these settings: known-hosts file, key file, passphrase, agent."""
    key_dir: Path = settings.key_path
    known_hosts = settings.sftp_known_hosts or key_dir / "known_hosts"
    key_path: Path | None = None
    if settings.sftp_identity:
        key_path = key_dir / settings.sftp_identity
        check_private_file(key_path)
    else:
        for name in KEY_FILE_NAMES:
            if (key_dir / name).is_file():
                key_path = key_dir / name
                check_private_file(key_path)
                break
    phrase = environ.get(PASSPHRASE_VARIABLE)
    passphrase = Secret(phrase.encode("utf-8")) if phrase else None
    use_agent = bool(environ.get("SSH_AUTH_SOCK"))
    if key_path is None and not use_agent:
        raise DeliveryError(
            f"no SSH key for SFTP delivery: put a private key named one of "
            f"{', '.join(KEY_FILE_NAMES)} in {key_dir} (mode 0600), set sftp_identity, or "
            "run an SSH agent (SSH_AUTH_SOCK)",
            key_dir=str(key_dir),
        )
    return SshLogin(Path(known_hosts), key_path, passphrase, use_agent)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form of a key's fingerprint: SHA256:<base64 without padding>."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _UnknownHostKey(Exception):
    def __init__(self, host: str, key: paramiko.PKey) -> None:
        super().__init__(host)
        self.host = host
        self.key = key


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Refuses every host whose key is not in the known-hosts file."""

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(hostname, key)


_KEY_CLASSES: dict[str, type[paramiko.PKey]] = {
    "ssh-ed25519": paramiko.Ed25519Key,
    "ssh-rsa": paramiko.RSAKey,
    "ecdsa-sha2-nistp256": paramiko.ECDSAKey,
    "ecdsa-sha2-nistp384": paramiko.ECDSAKey,
    "ecdsa-sha2-nistp521": paramiko.ECDSAKey,
}
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def openssh_key_class(path: Path) -> type[paramiko.PKey] | None:
    """The key class of an OpenSSH-format private key, read from its clear public part.

    Knowing the class up front lets the key be decrypted once: ``PKey.from_path`` runs the
    (deliberately slow) bcrypt key derivation twice.
    """
    lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    if not lines or lines[0].strip() != "-----BEGIN OPENSSH PRIVATE KEY-----":
        return None
    try:
        body = base64.b64decode("".join(line for line in lines[1:] if "-----" not in line))
        if not body.startswith(_OPENSSH_MAGIC):
            return None
        message = paramiko.Message(body[len(_OPENSSH_MAGIC) :])
        for _ in range(3):  # cipher name, KDF name, KDF options
            message.get_binary()
        message.get_int()  # number of keys
        kind = paramiko.Message(message.get_binary()).get_text()
    except (ValueError, IndexError, paramiko.SSHException):
        return None
    return _KEY_CLASSES.get(kind)


def load_client_key(login: SshLogin) -> paramiko.PKey | None:
    """The client's private key from the key directory, or None (agent only)."""
    if login.key_path is None:
        return None
    phrase = login.passphrase.reveal() if login.passphrase else None
    try:
        kind = openssh_key_class(login.key_path)
        if kind is not None:
            return kind.from_private_key_file(str(login.key_path), phrase)
        return paramiko.PKey.from_path(login.key_path, phrase)
    except (paramiko.PasswordRequiredException, TypeError):
        # paramiko raises TypeError for an encrypted key given no passphrase.
        why = f"it is encrypted and {PASSPHRASE_VARIABLE} is not set"
    except (paramiko.SSHException, ValueError):
        why = f"its format is not supported or {PASSPHRASE_VARIABLE} does not open it"
    except OSError as exc:
        why = exc.strerror or "it cannot be read"
    raise DeliveryError(f"SSH key file {login.key_path} cannot be loaded: {why}")


def connect(spec: DestinationSpec, login: SshLogin, url: str) -> paramiko.SSHClient:
    """An authenticated SSH connection whose host key matched the known-hosts file."""
    if not login.known_hosts.is_file():
        raise DeliveryError(
            f"known-hosts file {login.known_hosts} does not exist; SFTP delivery needs the "
            "server's host key there (check its fingerprint with the server's operator, then "
            f"add it, e.g. ssh-keyscan -p {spec.port} {spec.host} >> {login.known_hosts})",
            destination=url,
        )
    pkey = load_client_key(login)
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(login.known_hosts))
        client.set_missing_host_key_policy(_RefuseUnknown())
        client.connect(
            spec.host,
            port=spec.port,
            username=spec.user,
            pkey=pkey,
            allow_agent=login.use_agent,
            look_for_keys=False,
            timeout=CONNECT_TIMEOUT_S,
            banner_timeout=CONNECT_TIMEOUT_S,
            auth_timeout=CONNECT_TIMEOUT_S,
        )
    except Exception as exc:
        client.close()
        raise connect_error(exc, spec, login, url) from None
    return client


def connect_error(
    exc: Exception, spec: DestinationSpec, login: SshLogin, url: str
) -> DeliveryError:
    """The DeliveryError for a failed connection; only network faults are retryable."""
    where = f"{spec.host}:{spec.port}"
    if isinstance(exc, _UnknownHostKey):
        return DeliveryError(
            f"host key of {exc.host} is not in known-hosts file {login.known_hosts} (the "
            f"server offered {exc.key.get_name()} {fingerprint(exc.key)}); refused: check "
            "that fingerprint with the server's operator, then add the key to that file",
            destination=url,
        )
    if isinstance(exc, paramiko.BadHostKeyException):
        return DeliveryError(
            f"host key of {where} has CHANGED: it offered {exc.key.get_name()} "
            f"{fingerprint(exc.key)} but known-hosts file {login.known_hosts} has "
            f"{fingerprint(exc.expected_key)}; refused (if the server's key was really "
            "replaced, update its line in that file)",
            destination=url,
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return DeliveryError(
            f"SSH login as {spec.user!r} at {where} was refused (tried {login.describe()})",
            destination=url,
        )
    if isinstance(exc, DeliveryError):
        return exc
    secrets = (login.passphrase.reveal().decode("utf-8", "replace"),) if login.passphrase else ()
    detail = scrub(str(exc), secrets) or type(exc).__name__
    retryable = isinstance(exc, OSError | EOFError | socket.timeout | paramiko.SSHException)
    return DeliveryError(
        f"cannot open SFTP connection to {where}: {detail}" + ("; will retry" if retryable else ""),
        destination=url,
        retryable=retryable,
    )
