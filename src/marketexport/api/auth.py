"""Users and API tokens, kept beside the tasks in the task store's SQLite file.

A token is shown once when it is created (``me_<token id>_<secret>``); the store keeps only
the SHA-256 of the secret, so a copy of the database gives no working token. Tokens can be
revoked; a revoked or unknown token is refused the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NotFoundError, RequestError

logger = logging.getLogger(__name__)

ROLES = ("user", "admin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOKEN = re.compile(r"^me_([0-9a-f]{12})_([A-Za-z0-9_-]{32,64})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    secret_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""


@dataclass(frozen=True)
class User:
    """An authenticated caller."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret."""

    id: str
    user: str
    created_at: float
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "created_at": self.created_at,
            "revoked": self.revoked_at is not None,
        }


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RequestError(
            f"invalid user name {name!r} (expected 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)",
            user=name,
        )
    return name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class UserStore:
    """Users and hashed tokens in a SQLite file (the task store's, by default)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(
            str(self.path), timeout=30, isolation_level=None, check_same_thread=False
        )
        self._con.execute("PRAGMA journal_mode = WAL").fetchall()
        self._con.executescript(SCHEMA)

    def close(self) -> None:
        self._con.close()

    def add_user(self, name: str, role: str = "user") -> User:
        check_user_name(name)
        if role not in ROLES:
            raise RequestError(f"unknown role {role!r} (expected one of: {', '.join(ROLES)})")
        try:
            self._con.execute(
                "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)",
                (name, role, time.time()),
            )
        except sqlite3.IntegrityError:
            raise ConfigError(f"user {name!r} exists already", user=name) from None
        logger.info("user %s added with role %s", name, role)
        return User(name, role)

    def get_user(self, name: str) -> User:
        row = self._con.execute("SELECT name, role FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no user {name!r} (add one with: marketexport users add NAME)")
        return User(row[0], row[1])

    def list_users(self) -> list[User]:
        rows = self._con.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [User(name, role) for name, role in rows]

    def create_token(self, user_name: str) -> tuple[TokenInfo, str]:
        """A new token for the user: its record and the token text, shown this once."""
        user = self.get_user(user_name)
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        self._con.execute(
            "INSERT INTO api_tokens (id, user_name, secret_sha256, created_at) VALUES (?,?,?,?)",
            (token_id, user.name, _digest(secret), now),
        )
        logger.info("token %s created for user %s", token_id, user.name)
        return TokenInfo(token_id, user.name, now, None), f"me_{token_id}_{secret}"

    def revoke_token(self, token_id: str) -> TokenInfo:
        cursor = self._con.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (time.time(), token_id),
        )
        if cursor.rowcount == 0:
            raise NotFoundError(f"no active token with id {token_id!r}", token_id=token_id)
        logger.info("token %s revoked", token_id)
        return next(t for t in self.list_tokens() if t.id == token_id)

    def list_tokens(self, user_name: str | None = None) -> list[TokenInfo]:
        sql = "SELECT id, user_name, created_at, revoked_at FROM api_tokens"
        params: tuple[Any, ...] = ()
        if user_name is not None:
            sql += " WHERE user_name = ?"
            params = (user_name,)
        rows = self._con.execute(sql + " ORDER BY created_at", params).fetchall()
        return [TokenInfo(*row) for row in rows]

    def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None for a malformed, unknown or revoked one."""
        match = _TOKEN.match(token or "")
        if match is None:
            return None
        token_id, secret = match.groups()
        row = self._con.execute(
            "SELECT t.secret_sha256, t.revoked_at, u.name, u.role FROM api_tokens t "
            "JOIN users u ON u.name = t.user_name WHERE t.id = ?",
            (token_id,),
        ).fetchone()
        if row is None or row[1] is not None:
            return None
        if not hmac.compare_digest(row[0], _digest(secret)):
            return None
        return User(row[2], row[3])
