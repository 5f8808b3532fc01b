"""Exit codes, in one place (as diff(1) uses them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # valid backup / no difference / restore verified
    INVALID = 1  # invalid backup, refused or rolled-back restore, differences found
    ERROR = 2  # usage or I/O error
