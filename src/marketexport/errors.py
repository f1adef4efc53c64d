"""The error classes of marketexport.

Every error names the offending value and, where there is a choice, the accepted ones.
Errors keep those values as attributes and pickle round-trip, because they cross worker
processes. ``retryable`` says whether trying the same thing again could help; the task
runner reads only that.
"""

from __future__ import annotations

from typing import Any

SHOWN_CHARS = 80


def shown_value(text: str) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut.

    A value of more than 80 characters shows its start and its length, so that a
    megabyte-long symbol gives a message of one short line, not a megabyte.
    """
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}\u2026 ({len(text)} characters)"


def _shorten(message: str, attrs: dict[str, Any]) -> str:
    # Each long text attribute (the offending value, by the convention of this module) is
    # cut wherever the message quotes it: one place for every error. A value given bare,
    # such as the path that heads a message, is left whole.
    for value in attrs.values():
        if isinstance(value, str) and len(value) > SHOWN_CHARS:
            message = message.replace(repr(value), shown_value(value))
    return message


_RETRY_PROMISE = "; will retry"


def foreground_message(exc: Exception) -> str:
    """The error's message for a command run by hand.

    A transient error's "; will retry" is the promise of a task runner or worker; nothing
    retries a command in the foreground, so it says what to do instead: the error's
    ``hint``, or to run the command again.
    """
    message = str(exc)
    if not message.endswith(_RETRY_PROMISE):
        return message
    hint = getattr(exc, "hint", None) or "run the command again once that has passed"
    return f"{message[: -len(_RETRY_PROMISE)]}; {hint}"


class ExportError(Exception):
    """Base of every error marketexport raises on purpose.

    Values longer than 80 characters among the attributes are shown cut where the message
    quotes them (see :func:`shown_value`); the attributes keep them whole.
    """

    exit_code = 1
    retryable = False

    def __init__(self, message: str, **attrs: Any) -> None:
        message = _shorten(message, attrs)
        super().__init__(message)
        self.message = message
        self.attrs = attrs
        for key, value in attrs.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.message, self.attrs))

    def __str__(self) -> str:
        return self.message


def _rebuild_error(cls: type[ExportError], message: str, attrs: dict[str, Any]) -> ExportError:
    return cls(message, **attrs)


class ConfigError(ExportError, ValueError):
    """A setting, flag or request field has a value that cannot be used."""

    exit_code = 2


class RequestError(ConfigError):
    """An export request is invalid: unknown dataset, column, format, bad range..."""


class ConflictError(RequestError):
    """A name that must be unique is taken (a schedule's): exit code 2, HTTP 409."""


class NotFoundError(ExportError, LookupError):
    """A task, schedule, key or file that was asked for does not exist."""

    exit_code = 2


class SourceError(ExportError):
    """An input file cannot be imported; names the file, and the line when known."""

    exit_code = 2


class StoreError(ExportError):
    """The store failed to answer; transient faults set ``retryable``."""


class TransientStoreError(StoreError):
    """A store fault that may pass (locked file, dropped connection).

    Its message ends "; will retry", which is true where a task runner or worker meets it;
    ``hint`` says what a person who ran a command by hand can do instead (the CLI shows it).
    """

    retryable = True


BUSY_HINT = (
    "wait until the other process using it (an export, ingest, serve or worker) has "
    "finished, then run the command again"
)


class FormatError(ExportError):
    """A format writer cannot represent a value; names row and column."""


class CompressionError(ExportError):
    """A compressor or decompressor failed."""


class EncryptionError(ExportError):
    """Encryption or decryption failed (wrong key, tampered or truncated file)."""


class KeyFileError(EncryptionError, ConfigError):
    """A key file or named key holds no usable key (wrong length or form): bad input, so
    exit code 2, and still an EncryptionError to code that catches those."""

    exit_code = 2


class SinkError(ExportError):
    """The output cannot be written (permissions, full disk...)."""


class ManifestError(ExportError):
    """A manifest is missing, malformed, or does not match its file."""


class TaskCancelled(ExportError):
    """The export was cancelled; partial output has been removed."""


class TaskStateError(ExportError):
    """A task cannot make the asked transition from its state (retry a completed task...)."""

    exit_code = 2


class ServiceError(ExportError):
    """The HTTP service cannot start: its address is taken or cannot be listened on."""


class BrokerError(ExportError):
    """The message broker (Redis, for the Celery executor) did not answer; names its URL
    with the password masked."""

    retryable = True


class DeliveryError(ExportError):
    """Delivering a finished export to its destination failed; names the destination and
    file, never a credential. A dropped or refused connection sets ``retryable``."""

    def __init__(self, message: str, *, retryable: bool = False, **attrs: Any) -> None:
        super().__init__(message, retryable=retryable, **attrs)
