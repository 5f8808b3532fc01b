"""``rbkit diff A B``: the command function, registered in toolkit/cli.py.

Parse the options, call ``compute_diff`` (compute.py), hand the report to render.py, exit like
diff(1): 0 the same, 1 different, 2 an error (one ``error:`` line on stderr).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

import typer

from toolkit.cli import connection
from toolkit.cli import sources_options as options
from toolkit.cli.output import emit, emit_json, emit_report, width
from toolkit.cli.progress import progress_for
from toolkit.errors import DiffError, ExitCode, UsageError
from toolkit.server.connect import CONNECT_TIMEOUT

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", re.IGNORECASE)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


EXAMPLES = """\b
Examples:
  # what changed, per db and per type
  rbkit diff monday.rdb tuesday.rdb
  # a backup against the live server, with the differing keys
  rbkit diff dump.rdb redis://127.0.0.1:6379 --keys
  # a TLS server, named as redis-cli users name it
  rbkit diff dump.rdb 10.0.0.5:6380 --tls --cacert ca.crt
  # values too, as one JSON object (schema rbkit.diff/1)
  rbkit diff before.rdb after.rdb --values --json
  # a section for a post-incident review
  rbkit diff a.rdb b.rdb --match 'user:*' --format markdown
"""


class Via(str, Enum):
    auto = "auto"
    snapshot = "snapshot"
    scan = "scan"


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


def diff(
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            help="Before: a backup check reads, a saved check --json report, or a server "
            "(redis://, rediss://, unix:// URL, or host:port; a file that exists wins).",
        ),
    ],
    b: Annotated[str, typer.Argument(metavar="B", help="After: the same kinds of source as A.")],
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    format_: Annotated[
        Format | None,
        typer.Option("--format", help="table (default), json (rbkit.diff/1) or markdown."),
    ] = None,
    keys: Annotated[
        bool,
        typer.Option(
            "--keys",
            help="List the differing keys (the first --limit; Markdown and JSON always do).",
        ),
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            help="How many differing keys --keys and Markdown list (JSON lists every one).",
        ),
    ] = 50,
    match: Annotated[
        str | None,
        typer.Option(
            "--match", metavar="GLOB", help="Compare only key names matching this glob (as SCAN)."
        ),
    ] = None,
    values: Annotated[
        bool, typer.Option("--values", help="Compare values (logical content) too.")
    ] = False,
    db: Annotated[
        list[int] | None,
        typer.Option("--db", "-n", min=0, help="Compare only this db (repeat for more)."),
    ] = None,
    prefix_sep: Annotated[
        str,
        typer.Option(
            "--prefix-sep",
            metavar="SEP",
            help="Key families: name up to this separator ('' for none).",
        ),
    ] = ":",
    top: Annotated[
        int, typer.Option("--top", min=0, help="How many key families to show.")
    ] = 10,  # as toolkit.diff.render.TOP_PREFIXES
    ttl_tolerance: Annotated[
        str,
        typer.Option(
            "--ttl-tolerance",
            metavar="DURATION",
            help="TTLs closer than this are the same: ms, or with a unit (500ms, 2s, 1m).",
        ),
    ] = "1000ms",
    module: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            metavar="NAME|PATH",
            help="A module the AOF's loading server has, as for rbkit check; repeatable.",
        ),
    ] = None,
    via: Annotated[
        Via,
        typer.Option(
            "--via",
            help="How a server is read: snapshot (its replication RDB, by SYNC: consistent "
            "and fast), scan (SCAN and per-key reads), or auto: the snapshot where the server "
            "(every primary of a cluster) streams it without writing its dump file "
            "(repl-diskless-sync yes), else SCAN.",
        ),
    ] = Via.auto,
    sync_now: connection.sync_now() = False,
    tmpdir: options.tmpdir() = None,
    password: connection.Password = None,
    user: connection.User = None,
    tls: connection.Tls = False,
    cacert: connection.CaCert = None,
    cert: connection.Cert = None,
    key: connection.Key = None,
    insecure: connection.Insecure = False,
    connect_timeout: connection.ConnectTimeout = CONNECT_TIMEOUT,
) -> None:
    """Compare two backups or servers: keys lost, added or changed (exit 1 if any)."""
    if json_out and format_ not in (None, Format.json):
        raise UsageError("--json and --format are one choice: give one of them")
    fmt = Format.json if json_out else format_ or Format.table
    tolerance_ms = parse_duration_ms(ttl_tolerance)
    if tolerance_ms is None:
        raise UsageError(
            f"--ttl-tolerance {ttl_tolerance!r}: expected milliseconds or e.g. 500ms, 2s, 1m"
        )
    from toolkit.diff import render
    from toolkit.diff.compute import compute_diff

    connect, _given = connection.connect_options(
        password, user, tls, cacert, cert, key, insecure, connect_timeout, sync_now=sync_now
    )
    try:
        report = compute_diff(
            a,
            b,
            dbs=sorted(set(db)) if db else None,
            match=match,
            values=values,
            ttl_tolerance_ms=tolerance_ms,
            limit=None if fmt is Format.json else limit,  # JSON: every key, for --keys-from
            prefix_sep=prefix_sep or None,
            progress=progress_for,
            modules=tuple(module or ()),
            connect=connect,
            via=via.value,
            tmpdir=tmpdir,
        )
    except DiffError as e:  # compute never names a password; redact makes sure
        raise DiffError(render.redact(str(e))) from None
    if fmt is Format.json:
        emit_json(render.diff_json(report, top_prefixes=top, stream=True))
    elif fmt is Format.markdown:
        # The review document wants the first keys: Markdown lists them without --keys too.
        emit(render.render_markdown(report, keys=True, top_prefixes=top).rstrip("\n"))
    else:
        text = render.render_table(report, keys=keys, top_prefixes=top, width=width())
        emit_report(text, ok=report.same)
    raise typer.Exit(int(ExitCode.OK if report.same else ExitCode.INVALID))


def parse_duration_ms(text: str) -> int | None:
    """``"1500"`` or ``"1500ms"`` -> 1500, ``"2s"`` -> 2000, ``"1m"`` -> 60000; None if bad."""
    m = _DURATION.fullmatch(text)
    if not m:
        return None
    return round(float(m.group(1)) * _UNIT_MS[(m.group(2) or "ms").lower()])
