"""The ``rbkit`` command line: the Typer app, and the one place errors become exit codes.

Commands (one module each: check.py, restore.py, diff.py, export.py) parse their options, call the
toolkit, render and raise ``typer.Exit`` with their verdict. Anything that goes wrong on the
way is an :class:`~toolkit.errors.RbkitError` and ends here, in :func:`main`: one ``error:``
line on stderr (with ``--json``, a JSON object on stdout too) and exit code 2. A usage error
of the command line itself is exit 2 as well; Ctrl-C is 130; a bug of rbkit's is one line
too, with its traceback only under ``--debug``. A reader that closes the pipe (``| head``)
changes nothing: the exit code is the verdict's.
"""

from __future__ import annotations

import functools
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from toolkit import __version__
from toolkit.cli.check import EXAMPLES as CHECK_EXAMPLES
from toolkit.cli.check import check
from toolkit.cli.diff import EXAMPLES as DIFF_EXAMPLES
from toolkit.cli.diff import diff
from toolkit.cli.export import EXAMPLES as EXPORT_EXAMPLES
from toolkit.cli.export import export
from toolkit.cli.help import Command, Group
from toolkit.cli.output import emit, emit_json
from toolkit.cli.restore import EXAMPLES as RESTORE_EXAMPLES
from toolkit.cli.restore import restore
from toolkit.errors import ExitCode, RbkitError

ERROR_SCHEMA = "rbkit.error/1"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 80}

app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    help="Inspect, validate, restore and compare Redis backups (RDB and AOF).",
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        emit(f"rbkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an internal error.")
    ] = False,
) -> None:
    """rbkit: check a backup before you restore it."""
    _state["debug"] = debug


def _report(message: str, code: ExitCode, as_json: bool) -> None:
    emit(f"error: {message}", err=True)
    if as_json:
        emit_json({"schema": ERROR_SCHEMA, "error": message, "exit_code": int(code)})


def _asked_for_json(options: dict[str, Any]) -> bool:
    """--json (with no other --format), or --format json."""
    fmt = options.get("format_")
    if fmt is not None:
        return str(getattr(fmt, "value", fmt)) == "json"
    return bool(options.get("json_out"))


def reported(command: Callable[..., None]) -> Callable[..., None]:
    """``command``, with its RbkitErrors turned into one ``error:`` line (and, when it was
    asked for JSON, a JSON object) and their exit code: the one mapping of errors to codes."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except RbkitError as e:
            as_json = _asked_for_json(kwargs)
            _report(str(e), e.exit_code, as_json)
            raise typer.Exit(int(e.exit_code)) from None

    return run


app.command(cls=Command, epilog=CHECK_EXAMPLES, context_settings=CONTEXT)(reported(check))
app.command(cls=Command, epilog=RESTORE_EXAMPLES, context_settings=CONTEXT)(reported(restore))
app.command(cls=Command, epilog=DIFF_EXAMPLES, context_settings=CONTEXT)(reported(diff))
app.command(cls=Command, epilog=EXPORT_EXAMPLES, context_settings=CONTEXT)(reported(export))


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM ends rbkit as Ctrl-C does: through the code that cleans up and rolls back."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry: run the app and exit with its code (see the module docstring).
    Typer itself turns usage errors into exit 2 and Ctrl-C into 130."""
    args = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(args=args, prog_name="rbkit")
    except Exception as e:  # a bug of ours: one line, not a traceback
        if _state["debug"] or "--debug" in args:
            traceback.print_exc()
        message = f"internal error ({type(e).__name__}: {e}); please report it"
        _report(message, ExitCode.ERROR, "--json" in args)
        sys.exit(int(ExitCode.ERROR))
    sys.exit(int(ExitCode.OK))
