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

    def to_json(self) -> dict[str, object]:
        """As every report's ``problems`` list holds it."""
        return {
            "severity": self.severity,
            "code": self.code,
            "offset": self.offset,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Gate:
    """The gate every restore passes: an invalid backup is refused unless forced."""

    refusal: str | None  # why it is refused; None: it may go on
    detail: str  # the gate step's one line
    forced: str | None  # a note when --force let an invalid backup through


def gate(problems: list[Problem], force: bool, going_on: str) -> Gate:
    """Judge a check's ``problems``; ``going_on`` says what --force does ("staged anyway")."""
    errors = [p for p in problems if p.severity == ERROR]
    warnings = len(problems) - len(errors)
    if not errors:
        return Gate(None, "valid" + (f", {warnings} warnings" if warnings else ""), None)
    if not force:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return Gate(f"the backup is invalid: {errors[0].message}{more}", "invalid", None)
    detail = f"INVALID ({len(errors)} errors), {going_on} (--force)"
    return Gate(None, detail, f"--force: an invalid backup {going_on} ({errors[0].message})")
