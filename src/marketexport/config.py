"""Settings, resolved once: defaults < TOML file < MARKETEXPORT_* environment < flags."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "MARKETEXPORT_"
# Settings that may hold a URL with a password, masked wherever settings are shown.
URL_SETTINGS = ("store", "task_store", "redis_url")
CONFIG_FILE_NAME = "marketexport.toml"


@dataclass(frozen=True)
class Settings:
    """Every setting of marketexport, with its default."""

    # Where the embedded store, task store, keys and exports live.
    data_dir: Path = Path("marketexport-data")
    # Key directory; default <data_dir>/keys.
    key_dir: Path | None = None
    # Name of a signing key in the key directory; when set, every export's manifest and
    # SHA256SUMS are signed in minisign's format (default: none, nothing is signed).
    signing_key: str | None = None
    # A DuckDB file path, or a postgresql:// URL; default <data_dir>/store.duckdb.
    store: str | None = None
    # The task store: a SQLite file path, or a postgresql:// URL that the processes of
    # several machines share (docs/celery.md); default <data_dir>/tasks.sqlite3.
    task_store: str | None = None
    # Where exports are written unless a request says otherwise; default <data_dir>/exports.
    export_dir: Path | None = None
    # "local" (embedded runner) or "celery".
    executor: str = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Celery executor (docs/celery.md): the queue tasks are sent to and workers consume.
    celery_queue: str = "marketexport"
    # Prefix of every Redis key of this deployment (queues, unacknowledged messages, worker
    # control), so that several deployments or test runs share one Redis without meeting.
    celery_key_prefix: str = "marketexport:"
    # Hard time limit of one attempt on a Celery worker, in seconds (default 6 h).
    celery_task_time_limit_s: int = 21_600
    # Redis visibility timeout in seconds: a message unacknowledged this long is delivered
    # again. Keep it above the time limit (default 7 h); the task store's lease stops a
    # redelivered copy from running a task twice either way.
    celery_visibility_timeout_s: int = 25_200
    # Seconds between two sweeps of a Celery worker or celery-beat: settle expired leases,
    # send messages for pending tasks that have none, settle split exports (default 5).
    celery_sweep_s: int = 5
    # A pending, due task whose last message is older than this many seconds while the
    # queue is empty gets a new message (the old one was lost); default 30.
    celery_redispatch_s: int = 30
    # Tasks run at once by the local runner.
    concurrency: int = 4
    # Share of the machine's cores exports may use together (0 < x <= 1).
    cpu_fraction: float = 0.8
    # Rows per Arrow batch read from the store.
    batch_rows: int = 32_768
    # DuckDB memory limit for an export, in MiB (sorting spills to disk beyond it).
    store_memory_mb: int = 32
    # PostgreSQL store: the [postgres] section, a default "schema" and per-dataset
    # [postgres.tables.<dataset>] mappings onto a collector's tables (docs/postgres.md).
    # Default: tables named after the datasets, found through the search_path.
    postgres: dict[str, Any] = field(default_factory=dict, hash=False)
    # A runner holds a lease on each task it runs and renews it every third of this many
    # seconds; a task whose lease has run out is taken to belong to a dead runner.
    task_lease_s: int = 30
    # Runs a task may take (the first one included) before a retryable error is final.
    task_max_attempts: int = 3
    # First delay before a retry, in seconds; each further retry waits twice as long.
    task_retry_delay_s: int = 5
    # SFTP deliveries: the known-hosts file server keys are checked against (an unknown or
    # changed key is refused; the check cannot be turned off). Default <key_dir>/known_hosts.
    sftp_known_hosts: Path | None = None
    # SFTP deliveries: file name of the SSH private key in the key directory; default the
    # first of id_ed25519, id_ecdsa, id_rsa found there. A running SSH agent is used too.
    sftp_identity: str | None = None
    # S3 deliveries: endpoint URL of an S3-compatible store; default AWS's own endpoint.
    s3_endpoint: str | None = None
    # S3 deliveries: region used to sign requests.
    s3_region: str = "us-east-1"
    # S3 deliveries: allow an http:// endpoint, and only one on a loopback address (a test
    # server, a local gateway); default false: HTTPS only.
    s3_allow_http_loopback: bool = False

    @property
    def key_path(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"

    @property
    def export_path(self) -> Path:
        return self.export_dir if self.export_dir is not None else self.data_dir / "exports"

    @property
    def store_url(self) -> str:
        return self.store if self.store else str(self.data_dir / "store.duckdb")

    @property
    def cpu_threads(self) -> int:
        """Threads that the store, codecs and tasks may use together (at least one)."""
        return max(1, int((os.cpu_count() or 1) * self.cpu_fraction))

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in URL_SETTINGS and value:
                value = redact_url(str(value))
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON-ready values with credentials masked."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in URL_SETTINGS and value:
                value = redact_url(str(value))
            out[item.name] = str(value) if isinstance(value, Path) else value
        return out


def redact_url(url: str) -> str:
    """Mask the password of a URL such as postgresql://u:p@host/db (also a password=
    parameter)."""
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url)
    if "://" not in url or "@" not in url.split("://", 1)[1].split("/", 1)[0]:
        return url
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


_FIELD_TYPES = {item.name: item.type for item in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    kind = str(_FIELD_TYPES[name])
    if kind.startswith("dict"):
        return _coerce_section(name, value)
    try:
        if "Path" in kind:
            return Path(str(value)).expanduser() if value not in (None, "") else None
        if kind == "int":
            number = int(value)
            if number < 1:
                raise ValueError
            return number
        if kind == "float":
            fraction = float(value)
            if not 0 < fraction <= 1:
                raise ValueError
            return fraction
        if kind == "bool":
            return _coerce_bool(value)
    except (TypeError, ValueError):
        expected = {
            "int": "a whole number >= 1",
            "float": "a number in (0, 1]",
            "bool": "true or false",
        }[kind]
        raise ConfigError(
            f"invalid value {value!r} for setting {name!r} (expected {expected})",
            setting=name,
        ) from None
    if name == "task_store" and "://" in str(value):
        if not str(value).startswith(("postgresql://", "postgres://")):
            scheme = str(value).split("://", 1)[0]
            raise ConfigError(
                f"invalid task store URL scheme {scheme!r} (expected a SQLite file path or "
                "a postgresql:// URL)",
                setting=name,
            )
    if name == "executor" and value not in ("local", "celery"):
        raise ConfigError(
            f"invalid executor {value!r} (expected one of: local, celery)", setting=name
        )
    return value


def _coerce_section(name: str, value: Any) -> dict[str, Any]:
    """A TOML table (or its JSON text, from the environment), checked by its owner."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise ConfigError(
            f"invalid value for setting {name!r} (expected a TOML table such as "
            f"[{name}], or JSON object text in {ENV_PREFIX}{name.upper()})",
            setting=name,
        )
    if name == "postgres":
        from .store.pglayout import parse_layout

        parse_layout(value)
    return value


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _check_keys(source: str, keys: Any) -> None:
    for key in keys:
        if key not in _FIELD_TYPES:
            raise ConfigError(
                f"unknown setting {key!r} in {source} "
                f"(expected one of: {', '.join(sorted(_FIELD_TYPES))})",
                setting=key,
            )


def load_settings(
    overrides: dict[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Resolve the settings from defaults, a TOML file, the environment and ``overrides``."""
    env = dict(os.environ if environ is None else environ)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_keys("the overrides", flags)

    env_values: dict[str, Any] = {}
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            name = key[len(ENV_PREFIX) :].lower()
            if name in _FIELD_TYPES and value.strip():
                env_values[name] = value

    data_dir = Path(flags.get("data_dir") or env_values.get("data_dir") or "marketexport-data")
    path = config_file or (
        Path(env[ENV_PREFIX + "CONFIG"]) if ENV_PREFIX + "CONFIG" in env else None
    )
    file_values: dict[str, Any] = {}
    if path is None and (data_dir / CONFIG_FILE_NAME).exists():
        path = data_dir / CONFIG_FILE_NAME
    if path is not None:
        try:
            file_values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read configuration file {path}: {exc}", path=str(path)
            ) from None
        if "marketexport" in file_values:
            # a [postgres] table may stand beside the [marketexport] one (docs/postgres.md)
            beside = {k: v for k, v in file_values.items() if k == "postgres"}
            file_values = {**file_values["marketexport"], **beside}
        _check_keys(f"configuration file {path}", file_values)

    settings = Settings()
    for layer in (file_values, env_values, flags):
        values = {k: _coerce(k, v) for k, v in layer.items()}
        settings = replace(settings, **values)
    return settings
