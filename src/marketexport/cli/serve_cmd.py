"""``marketexport serve``, ``users`` and ``tokens``: the HTTP service and its callers."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
from pathlib import Path

import click

from ..errors import ConfigError, ServiceError
from ..tasks.store import TaskStore, task_store_path
from . import AppContext, pass_app
from .output import print_json
from .params import NonEmptyPath

logger = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--tls-cert",
    type=NonEmptyPath(exists=True, dir_okay=False, path_type=Path, expected="a PEM certificate"),
)
@click.option(
    "--tls-key",
    type=NonEmptyPath(exists=True, dir_okay=False, path_type=Path, expected="a PEM private key"),
)
@click.option("--no-runner", is_flag=True, help="Serve the API only; tasks run elsewhere.")
@pass_app
def serve_command(
    app: AppContext,
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    no_runner: bool,
) -> None:
    """Run the HTTP API with the embedded runner and scheduler (API only with Celery)."""
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("give both --tls-cert and --tls-key, or neither")
    if tls_cert is not None and tls_key is not None:
        check_tls_files(tls_cert, tls_key)
    # Bound before anything starts, so that a taken port is one line and exit code 1
    # rather than a runner started, uvicorn's log and its own exit code.
    sock = listen_socket(host, port)
    with sock:
        _serve_on(sock, app, tls_cert, tls_key, no_runner)


def _serve_on(
    sock: socket.socket,
    app: AppContext,
    tls_cert: Path | None,
    tls_key: Path | None,
    no_runner: bool,
) -> None:
    """Start the runner and scheduler beside the API and serve on ``sock`` until stopped."""
    import uvicorn

    from ..api.app import create_app
    from ..tasks.runner import Runner
    from ..tasks.scheduler import scheduler_hooks

    settings = app.settings
    tasks = TaskStore.open(settings)
    starts, stops = [], []
    if settings.executor == "local" and not no_runner:
        runner = Runner(settings, tasks)
        thread = threading.Thread(target=runner.run, name="runner", daemon=True)
        starts.append(thread.start)
        stops.append(lambda: (runner.stop(), thread.join(timeout=60)))
    for start, stop in scheduler_hooks(settings, tasks):
        starts.append(start)
        stops.append(stop)

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(settings, tasks=tasks, on_start=starts, on_stop=stops),
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="info",
        access_log=False,
    )
    config.load()
    if config.ssl is not None:
        # TLS 1.2 is the oldest version the service speaks.
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"marketexport serving on {scheme}://{shown}:{port} (API under /v1)", err=True)
    uvicorn.Server(config).run(sockets=[sock])


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (as uvicorn would bind it), or a ServiceError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        hint = (
            "; another process is listening there: stop it or choose another --port"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise ServiceError(
            f"cannot listen on {host}:{port}: {reason}{hint}", host=host, port=port
        ) from None
    sock.set_inheritable(True)
    return sock


def check_tls_files(cert: Path, key: Path) -> None:
    """Refuse a --tls-cert or --tls-key that TLS cannot use, naming the file and the form."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=str(cert))
    except (ssl.SSLError, OSError, ValueError):
        raise ConfigError(
            f"--tls-cert {cert} holds no PEM certificate (expected a file with a "
            "'-----BEGIN CERTIFICATE-----' block)",
            path=str(cert),
        ) from None
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(
                f"--tls-key {key} does not belong to the certificate in {cert} (expected the "
                "private key the certificate was made for)",
                path=str(key),
            ) from None
        raise ConfigError(
            f"--tls-key {key} holds no unencrypted PEM private key (expected a file with a "
            "'-----BEGIN PRIVATE KEY-----' block, or an RSA or EC one)",
            path=str(key),
        ) from None


def _no_password() -> bytes:
    # An encrypted key would make OpenSSL prompt on the terminal; it is refused instead.
    raise ValueError("encrypted private key")


@click.group("users")
def users_group() -> None:
    """Manage the users of the HTTP API."""


@users_group.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The user sees and acts on every task.")
@pass_app
def users_add(app: AppContext, name: str, admin: bool) -> None:
    """Add a user (then create a token with: marketexport tokens create NAME)."""
    from ..api.auth import UserStore

    store = UserStore(task_store_path(app.settings))
    user = store.add_user(name, "admin" if admin else "user")
    click.echo(f"user {user.name} added ({user.role})")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def users_list(app: AppContext, as_json: bool) -> None:
    """List users and their roles."""
    from ..api.auth import UserStore

    users = UserStore(task_store_path(app.settings)).list_users()
    if as_json:
        print_json([{"name": u.name, "role": u.role} for u in users])
        return
    for user in users:
        click.echo(f"{user.name}\t{user.role}")


@click.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke API tokens."""


@tokens_group.command("create")
@click.argument("user")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def tokens_create(app: AppContext, user: str, as_json: bool) -> None:
    """Create a token for USER. It is shown this once; only its hash is stored."""
    from ..api.auth import UserStore

    info, token = UserStore(task_store_path(app.settings)).create_token(user)
    if as_json:
        print_json({**info.to_dict(), "token": token})
        return
    click.echo(token)
    click.echo(f"token id {info.id} for {info.user}: store it now, it is not shown again", err=True)


@tokens_group.command("list")
@click.option("--user", help="Only this user's tokens.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def tokens_list(app: AppContext, user: str | None, as_json: bool) -> None:
    """List tokens (ids and owners, never the secrets)."""
    from ..api.auth import UserStore

    tokens = UserStore(task_store_path(app.settings)).list_tokens(user)
    if as_json:
        print_json([t.to_dict() for t in tokens])
        return
    for token in tokens:
        click.echo(f"{token.id}\t{token.user}\t{'revoked' if token.revoked_at else 'active'}")


@tokens_group.command("revoke")
@click.argument("token_id")
@pass_app
def tokens_revoke(app: AppContext, token_id: str) -> None:
    """Revoke a token by its id; requests with it get 401 from then on."""
    from ..api.auth import UserStore

    info = UserStore(task_store_path(app.settings)).revoke_token(token_id)
    click.echo(f"token {info.id} of {info.user} revoked")


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)
    cli.add_command(users_group)
    cli.add_command(tokens_group)
