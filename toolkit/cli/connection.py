"""redis-cli's connection options, shared by the commands that reach a server (diff, restore).

Each is an annotated type for a command's signature; :func:`connect_options` turns the values
given into the :class:`~toolkit.server.connect.ConnectOptions` every server side is reached
with, and names the flags given (restore refuses them in a drill).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli.output import emit
from toolkit.server.connect import CONNECT_TIMEOUT, ConnectOptions

PANEL = "Connection (as redis-cli's)"

Password = Annotated[
    str | None,
    typer.Option(
        "-a",
        "--pass",
        metavar="PASSWORD",
        help="Password (default: REDISCLI_AUTH; a URL's own wins). Visible in ps: prefer "
        "REDISCLI_AUTH.",
        show_default=False,
        rich_help_panel=PANEL,
    ),
]
User = Annotated[
    str | None,
    typer.Option("--user", metavar="USER", help="ACL user name.", rich_help_panel=PANEL),
]
Tls = Annotated[
    bool,
    typer.Option("--tls", help="Connect with TLS (as rediss:// does).", rich_help_panel=PANEL),
]
_FILE = {"exists": True, "dir_okay": False, "metavar": "FILE", "rich_help_panel": PANEL}
CaCert = Annotated[
    Path | None,
    typer.Option("--cacert", help="CA certificate that signed the server's.", **_FILE),
]
Cert = Annotated[
    Path | None,
    typer.Option("--cert", help="Client certificate, when the server asks for one.", **_FILE),
]
Key = Annotated[
    Path | None, typer.Option("--key", help="Private key of the client certificate.", **_FILE)
]
Insecure = Annotated[
    bool,
    typer.Option(
        "--insecure", help="TLS without checking the server's certificate.", rich_help_panel=PANEL
    ),
]
ConnectTimeout = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        min=0.1,
        metavar="SECONDS",
        help="How long connecting (and the first reply) may take.",
        rich_help_panel=PANEL,
    ),
]


def sync_now(panel: str | None = None) -> Any:
    """``--sync-now``: rbkit's own, beside redis-cli's options."""
    return Annotated[
        bool,
        typer.Option(
            "--sync-now",
            help="Have a server read as its snapshot fork at once: rbkit sets its "
            "repl-diskless-sync-delay to 0 (CONFIG SET) until the fork starts, then puts it "
            "back. Without it the server first waits that many seconds (5 by default) for "
            "other replicas to join.",
            rich_help_panel=panel,
        ),
    ]


def connect_options(
    password: str | None,
    user: str | None,
    tls: bool,
    cacert: Path | None,
    cert: Path | None,
    key: Path | None,
    insecure: bool,
    timeout: float,
    announce: Callable[[str], None] | None = None,
    *,
    sync_now: bool = False,
) -> tuple[ConnectOptions, list[str]]:
    """The options, and the flags among them that were given. ``announce`` shows the
    "connecting to ..." line (default: a line on stderr when it is a terminal)."""
    given = {
        "--pass": password is not None,
        "--user": user is not None,
        "--tls": tls,
        "--cacert": cacert is not None,
        "--cert": cert is not None,
        "--key": key is not None,
        "--insecure": insecure,
        "--connect-timeout": timeout != CONNECT_TIMEOUT,
        "--sync-now": sync_now,
    }
    options = ConnectOptions(
        password=password,
        user=user,
        tls=tls,
        cacert=cacert,
        cert=cert,
        key=key,
        insecure=insecure,
        timeout=timeout,
        sync_now=sync_now,
        announce=announce or terminal_line(),
    )
    return options, [flag for flag, on in given.items() if on]


def terminal_line() -> Callable[[str], None] | None:
    """A function printing a line on stderr, when stderr is a terminal (None otherwise).

    "connecting to ..." is for a person who waits: scripts get their stderr for errors only
    (redis-cli says nothing either), and a failure names the server in its error anyway."""
    if not sys.stderr.isatty():
        return None
    return lambda line: emit(line, err=True)
