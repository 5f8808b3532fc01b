"""Problems a check reports: errors make a backup invalid, warnings do not (unless --strict)."""

from __future__ import annotations

from dataclasses import dataclass

from parsers.errors import FormatError

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    severity: str
    code: str
    offset: int | None
    message: str

    @classmethod
    def from_error(cls, error: FormatError) -> Problem:
        return cls(ERROR, error.code, error.offset, str(error))
