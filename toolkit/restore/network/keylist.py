"""The key names a selective restore takes from ``--keys-from FILE``.

Two kinds of file, told apart by their content:

- the JSON report of ``rbkit diff BACKUP TARGET --json`` (schema rbkit.diff/1): its per-key
  list, the differences ``--only`` names (``removed``: in the backup, gone from the target;
  ``changed``: in both, but different), each in its own db. A name is ``key`` (its text, when
  the name is valid UTF-8) or the bytes of ``key_b64``: exact either way.
- anything else: one key name per line (lines end with ``\\n``; a ``\\r`` before it is dropped;
  empty lines are skipped), for every db. A line that starts with ``"`` is one name in
  double quotes as redis-cli reads it (sdssplitargs): ``\\xHH``, ``\\n \\r \\t \\b \\a``,
  ``\\"`` and ``\\\\``. So a name with any byte, a line break or a leading quote included, is
  written ``"..."``; any other line is the name's own bytes (``redis-cli --scan`` output).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsers.sds import split_args
from toolkit.errors import KeyListError

REMOVED = "removed"
CHANGED = "changed"
ONLY_CHOICES = (REMOVED, CHANGED)
DIFF_SCHEMA = "rbkit.diff/1"
# diff kinds that count as "changed" (a key in both sides that differs)
_CHANGED_KINDS = frozenset({"type", "size", "ttl_gained", "ttl_lost", "ttl_changed", "value"})
ANY_DB = -1  # the names of a plain list apply to every db


@dataclass
class KeyList:
    """The names read, per db (``ANY_DB`` for a plain list)."""

    path: str
    kind: str  # "list" or "diff"
    only: tuple[str, ...] = ()  # for a diff: the differences taken
    names: dict[int, set[bytes]] = field(default_factory=dict)
    diff_a: str | None = None  # for a diff: what its side A was

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.names.values())

    def has(self, db: int, key: bytes) -> bool:
        names = self.names.get(db)
        if names is not None and key in names:
            return True
        any_db = self.names.get(ANY_DB)
        return any_db is not None and key in any_db


def read_key_list(path: Path, only: tuple[str, ...] | None) -> KeyList:
    """Read ``path`` (a key list or a diff --json report). ``only``: the differences a diff
    report gives (None: removed and changed); with a plain list it is a KeyListError."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyListError(f"--keys-from {path}: {e.strerror or e}") from None
    report = _as_diff(data)
    if report is not None:
        return _from_diff(path, report, only or ONLY_CHOICES)
    if only is not None:
        raise KeyListError(
            f"--only: {path} is a list of key names, not a diff report (rbkit diff --json)"
        )
    return _from_lines(path, data)


def _as_diff(data: bytes) -> dict[str, Any] | None:
    if data.lstrip()[:1] != b"{":
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("schema") == DIFF_SCHEMA:
        return obj
    return None


def _from_lines(path: Path, data: bytes) -> KeyList:
    names: set[bytes] = set()
    offset = 0
    for line in data.split(b"\n"):
        start = offset
        offset += len(line) + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if line[:1] == b'"':
            words = split_args(line)
            if words is None or len(words) != 1:
                raise KeyListError(
                    f"--keys-from {path}: byte offset {start}: expected one name in double "
                    'quotes ("...", with \\xHH, \\n, \\" and \\\\ escapes) on the line'
                )
            line = words[0]
        names.add(line)
    return KeyList(os.fspath(path), "list", names={ANY_DB: names})


def _from_diff(path: Path, report: dict[str, Any], only: tuple[str, ...]) -> KeyList:
    keys = report.get("keys")
    where = f"--keys-from {path}"
    if report.get("level") == "counts" or keys is None:
        raise KeyListError(
            f"{where}: the diff report lists no keys (a side was a saved check report, which "
            "holds counts only)"
        )
    if not isinstance(keys, list):
        raise KeyListError(f'{where}: "keys" is not a list')
    out = KeyList(os.fspath(path), "diff", only=only, diff_a=_side_name(report.get("a")))
    for n, entry in enumerate(keys):
        if not isinstance(entry, dict) or not isinstance(entry.get("db"), int):
            raise KeyListError(f"{where}: keys[{n}] is not a key with its db")
        kinds = set(entry.get("kinds") or ())
        wanted = (REMOVED in only and REMOVED in kinds) or (
            CHANGED in only and bool(kinds & _CHANGED_KINDS)
        )
        if wanted:
            out.names.setdefault(entry["db"], set()).add(_entry_key(entry, where, n))
    return out


def _entry_key(entry: dict[str, Any], where: str, n: int) -> bytes:
    b64 = entry.get("key_b64")
    if isinstance(b64, str):
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise KeyListError(f"{where}: keys[{n}].key_b64 is not base64") from None
    key = entry.get("key")
    if not isinstance(key, str):
        raise KeyListError(f"{where}: keys[{n}] has no key name")
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:
        raise KeyListError(f"{where}: keys[{n}].key is not valid text") from None


def _side_name(side: object) -> str | None:
    if isinstance(side, dict) and isinstance(side.get("name"), str):
        return side["name"]
    return None
