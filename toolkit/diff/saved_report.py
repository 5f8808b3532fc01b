"""A saved ``rbkit check --json`` report as a side of ``rbkit diff``: read and validated.

Every field diff uses is checked before it is used, and a malformed one ends the diff with one
line naming the file and the field (``databases.0.keys: expected a count (an integer >= 0),
found 1e999``), never a traceback: counts are JSON integers from 0 to 2**63-1 (not floats,
strings, booleans, NaN or Infinity), a db's ``by_type`` adds up to its ``keys``, ``expires``
and ``expired_at_check`` are not more than ``keys``; ``problems`` is a list of objects, ``valid``
a boolean, ``aux`` an object of strings, ``aof.last_ts`` an integer. A report nested too deeply
for the JSON reader is refused the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import DiffError

SCHEMA = "rbkit.check/1"
MAX_COUNT = 2**63 - 1
MAX_DB = 2**31 - 1


class _NotInteger(str):
    """A JSON number that is not an integer (1.5, 1e999) or NaN/Infinity, kept as written."""


@dataclass(frozen=True)
class SavedCounts:
    """One db's counts in a saved report."""

    keys: int
    expires: int
    by_type: dict[str, int]
    expired_at_check: int
    empty: int


@dataclass(frozen=True)
class SavedReport:
    """What diff takes from a saved check report."""

    databases: dict[int, SavedCounts]
    redis_ver: str | None
    ctime_s: int | None  # aux ctime, if it is a number
    last_ts: int | None  # aof.last_ts


def read_report(path: Path) -> SavedReport | None:
    """The validated report in ``path`` when it is a JSON file, else None (not a report)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except IsADirectoryError:
        return None
    except FileNotFoundError:
        raise DiffError(f"{path}: no such file, directory or server URL") from None
    except OSError as e:
        raise DiffError(f"{path}: {e.strerror or e}") from None
    if not head.startswith(b"{"):
        return None
    try:
        data = json.loads(path.read_bytes(), parse_float=_NotInteger, parse_constant=_NotInteger)
    except RecursionError:
        raise DiffError(f"{path}: a JSON file nested too deeply to be a check report") from None
    except (OSError, ValueError) as e:
        raise DiffError(f"{path}: a JSON file that cannot be read as a check report: {e}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise DiffError(
            f"{path}: a JSON file with schema {repr(schema)[:60]}, expected {SCHEMA!r} "
            "(a saved rbkit check --json report)"
        )
    return _Validator(path).report(data)


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, expected: str, found: object) -> DiffError:
        return DiffError(
            f"{self.path}: malformed check report: {field}: expected {expected}, "
            f"found {_shown(found)}"
        )

    def count(self, value: object, field: str) -> int:
        if type(value) is not int or not 0 <= value <= MAX_COUNT:
            raise self.fail(field, "a count (an integer from 0 to 2**63-1)", value)
        return value

    def obj(self, value: object, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, "an object", value)
        return value

    def report(self, data: dict[str, Any]) -> SavedReport:
        valid = data.get("valid", True)
        if type(valid) is not bool:
            raise self.fail("valid", "true or false", valid)
        problems = data.get("problems", [])
        if not isinstance(problems, list):
            raise self.fail("problems", "a list", problems)
        for i, p in enumerate(problems):
            p = self.obj(p, f"problems.{i}")
            for name in ("severity", "message"):
                if not isinstance(p.get(name), str):
                    raise self.fail(f"problems.{i}.{name}", "a string", p.get(name))
        if not valid:
            errors = [p["message"] for p in problems if p["severity"] == "error"]
            raise DiffError(
                f"{self.path}: a check report of an invalid backup "
                f"({errors[0] if errors else 'invalid'}); a diff of a damaged backup would be "
                "meaningless"
            )
        aux = self.obj(data.get("aux") or {}, "aux")
        for name in ("redis-ver", "ctime"):
            if name in aux and not isinstance(aux[name], str):
                raise self.fail(f"aux.{name}", "a string", aux[name])
        ctime = aux.get("ctime")
        aof = data.get("aof")
        last_ts = None
        if aof is not None:
            last_ts = self.obj(aof, "aof").get("last_ts")
            if last_ts is not None and type(last_ts) is not int:
                raise self.fail("aof.last_ts", "an integer or null", last_ts)
        if "databases" not in data:
            raise self.fail("databases", "an object", "nothing")
        databases = {}
        for db, stats in self.obj(data["databases"], "databases").items():
            if not (db.isascii() and db.isdigit() and int(db) <= MAX_DB):
                raise self.fail(f"databases.{_shown(db)}", "a db number as the name", db)
            databases[int(db)] = self.db(self.obj(stats, f"databases.{db}"), f"databases.{db}")
        return SavedReport(
            databases,
            aux.get("redis-ver"),
            int(ctime) if isinstance(ctime, str) and ctime.isascii() and ctime.isdigit() else None,
            last_ts,
        )

    def db(self, stats: dict[str, Any], where: str) -> SavedCounts:
        for name in ("keys", "expires"):
            if name not in stats:
                raise self.fail(f"{where}.{name}", "a count", "nothing")
        keys = self.count(stats["keys"], f"{where}.keys")
        expires = self.count(stats["expires"], f"{where}.expires")
        expired = self.count(stats.get("expired_at_check", 0), f"{where}.expired_at_check")
        empty = self.count(stats.get("empty", 0), f"{where}.empty")
        by_type = {
            str(t): self.count(n, f"{where}.by_type.{_shown(t)}")
            for t, n in self.obj(stats.get("by_type", {}), f"{where}.by_type").items()
        }
        if by_type and sum(by_type.values()) != keys:
            raise self.fail(f"{where}.by_type", f"counts adding up to keys ({keys})", by_type)
        for name, value in (("expires", expires), ("expired_at_check", expired)):
            if value > keys:
                raise self.fail(f"{where}.{name}", f"at most keys ({keys})", value)
        return SavedCounts(keys, expires, by_type, expired, empty)


def _shown(value: object, limit: int = 60) -> str:
    """A value for a one-line message: as JSON (a non-integer number as written), cut."""
    if isinstance(value, _NotInteger):
        text = str(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=True)
        except (TypeError, ValueError, RecursionError):
            text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
