"""Errors of the PostgreSQL store: what they name, what they hide, which may pass.

Messages name the database as ``PostgreSQL database "test" at 127.0.0.1:5432 (user u)``,
never the password; faults that may pass (a dropped connection, a server restarting) are
TransientStoreErrors, which the task runner retries.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from ..config import redact_url
from ..errors import StoreError, TransientStoreError

# SQLSTATE classes and codes of faults that may pass: connection exceptions, admin
# shutdown, crash recovery, too many connections, serialization failures and deadlocks.
TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")
TRANSIENT_WORDS = (
    "terminating connection",
    "no connection to the server",
    "server closed the connection",
    "could not receive data",
    "could not send data",
    "connection refused",
    "connection reset",
    "connection timed out",
    "the database system is",
    "too many clients",
    "lost synchronization",
    "ssl syscall",
)


def describe_url(url: str) -> tuple[str, str | None]:
    """``database "test" at 127.0.0.1:5432 (user postgres)`` and the URL's password."""
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.get("host") or parts.hostname or "localhost"
    try:
        port = query.get("port") or parts.port or 5432
    except ValueError:
        port = "?"
    database = query.get("dbname") or parts.path.lstrip("/") or "(default)"
    user = query.get("user") or parts.username
    password = query.get("password") or parts.password
    who = f" (user {user})" if user else ""
    return f'PostgreSQL database "{database}" at {host}:{port}{who}', password


def redact(url: str) -> str:
    """The URL with its password masked, in the user part and in a password= parameter."""
    return re.sub(r"(password=)[^&]*", r"\1***", redact_url(url))


def store_error(
    exc: BaseException, where_db: str, password: str | None, doing: str = ""
) -> StoreError:
    """A StoreError naming the database (never the password); retryable when it may pass."""
    text = str(exc).strip()
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    for prefix in ("IO: ", "INTERNAL: ", "UNKNOWN: ", "[libpq] "):
        text = text.replace(prefix, "")
    first = text.splitlines()[0] if text else type(exc).__name__
    state = str(getattr(exc, "sqlstate", "") or "")
    lower = text.lower()
    where = f"{doing} {where_db}" if doing else where_db
    if "password authentication failed" in lower or state in ("28P01", "28000"):
        return StoreError(
            f"{where}: login refused ({first}); check the user and password of the store URL",
            database=where_db,
        )
    if state.startswith(TRANSIENT_STATES) or any(word in lower for word in TRANSIENT_WORDS):
        return TransientStoreError(
            f"{where}: connection lost or refused ({first}); will retry",
            database=where_db,
            hint="check that the PostgreSQL server is running and reachable at the URL's host "
            "and port, then run the command again",
        )
    return StoreError(f"{where}: {first}", database=where_db)
