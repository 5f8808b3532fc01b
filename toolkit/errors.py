"""One family of errors, and the exit codes every command ends with (as diff(1) uses them).

Every error rbkit reports to a user is an :class:`RbkitError`: its ``str()`` is one line that
names the file, server or option concerned (never a password), and its ``exit_code`` is what
the command line exits with. toolkit/cli/app.py is the one place that turns them into output
and an exit code. Format errors of a backup are not errors of rbkit: the check reports them
as problems (parsers/errors.py), and the verdict decides the exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # valid backup / no difference / restore verified
    INVALID = 1  # invalid backup, refused or rolled-back restore, differences found
    ERROR = 2  # usage or I/O error
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class RbkitError(Exception):
    """An error to report in one line and exit with ``exit_code`` (2: usage or I/O)."""

    exit_code = ExitCode.ERROR


class UsageError(RbkitError):
    """Options that do not go together, or a value that makes no sense."""


class BackupIOError(RbkitError):
    """The backup cannot be read at all (missing, unreadable, not a file or directory)."""


class ConfigError(RbkitError):
    """A redis.conf cannot be read, or a line of it cannot be split as Redis splits it."""


class ServerError(RbkitError):
    """A redis-server binary cannot be found, started or stopped."""


class ConnectError(RbkitError):
    """A server cannot be reached, or refuses the connection or the login
    (toolkit/server/connect.py). ``unreachable``: nothing answered at all (refused, no
    socket, a timeout), which a file restore takes for a stopped target."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class TargetError(RbkitError):
    """The server to restore into cannot be reached or described."""


class RestoreError(RbkitError):
    """A usage or I/O problem of a restore, found before anything changed."""


class JournalError(RbkitError):
    """A restore's journal or lock cannot be read or written."""


class DiffError(RbkitError):
    """A diff that cannot be made (a source that cannot be read or reached)."""


class ExportError(RbkitError):
    """An export that cannot be made (not an RDB, damaged, an output that cannot be written)."""


class KeyListError(RbkitError):
    """A ``--keys-from`` file that cannot be read as key names or as a diff report."""
