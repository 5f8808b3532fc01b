"""A point-in-time copy of an AOF backup: everything before a :class:`CutPoint`, built in a
staging folder. The original files are never touched: the files before the cut are linked
(or copied), the file it falls in is copied up to the cut, and a multi-part AOF gets a
manifest of its own listing just those. The result is an ordinary backup, which goes through
the same drill and safe restore as any other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parsers.aof.manifest import parse_manifest
from toolkit.check.backup import check_backup
from toolkit.check.locate import MULTIPART, Located
from toolkit.check.result import CheckResult
from toolkit.check.timeline import CutPoint
from toolkit.errors import BackupIOError
from toolkit.stage.scratch import link_or_copy

CHUNK = 8 << 20


@dataclass
class Cut:
    """The cut backup and what the cut took away."""

    point: CutPoint
    backup: Path  # the staged backup (a file, or a manifest in a staged appendonlydir)
    before: CheckResult  # the original, checked
    after: CheckResult  # the cut one, checked
    commands_cut: int  # commands of the original that are not in the cut one

    def summary(self) -> dict[str, object]:
        """What the report says about the cut (the ``cut`` object of rbkit.restore/1)."""
        return {
            "file": self.point.file,
            "offset": self.point.offset,
            "why": self.point.why,
            "time": self.point.time,
            "commands_cut": self.commands_cut,
            "keys_before": _keys(self.before),
            "keys_after": _keys(self.after),
        }


def _keys(result: CheckResult) -> dict[str, int]:
    inv = result.inventory
    return {str(db): s.keys for db, s in inv.databases.items()} if inv else {}


def _commands(result: CheckResult) -> int:
    return sum(result.aof.commands.values()) if result.aof else 0


def build_cut(found: Located, point: CutPoint, staging: Path) -> Cut:
    """Stage the part of ``found`` before ``point`` in ``staging`` (a new, empty folder)."""
    if found.kind == MULTIPART:
        backup = _cut_multipart(found.path, point, staging)
    else:
        backup = staging / found.path.name
        _truncated_copy(found.path, backup, point.offset)
    before = check_backup(found.path)
    after = check_backup(backup)
    return Cut(point, backup, before, after, _commands(before) - _commands(after))


def _cut_multipart(manifest_path: Path, point: CutPoint, staging: Path) -> Path:
    folder = manifest_path.parent
    into = staging / folder.name
    into.mkdir()
    manifest = parse_manifest(manifest_path.read_bytes())
    lines = []
    for entry in manifest.entries:
        if entry.type == "h":
            continue
        src = folder / entry.name
        if entry.name == point.file:
            _truncated_copy(src, into / entry.name, point.offset)
        else:
            _link_or_copy(src, into / entry.name)
        lines.append(f"file {_quoted(entry.name)} seq {entry.seq} type {entry.type}\n")
        if entry.name == point.file:
            break
    (into / manifest_path.name).write_text("".join(lines), encoding="utf-8")
    return into / manifest_path.name


def _quoted(name: str) -> str:
    """A file name as a manifest line holds it (quoted when it has blanks)."""
    return f'"{name}"' if any(c.isspace() for c in name) else name


def _link_or_copy(src: Path, dest: Path) -> None:
    """A hard link where the filesystem allows it (nothing writes these files), else a copy."""
    try:
        link_or_copy(src, dest)
    except OSError as e:
        raise BackupIOError(f"{src}: {e.strerror or e}") from None


def _truncated_copy(src: Path, dest: Path, size: int) -> None:
    """The first ``size`` bytes of ``src`` as a new file ``dest``."""
    try:
        with open(src, "rb") as fin, open(dest, "xb") as fout:
            remaining = size
            while remaining:
                chunk = fin.read(min(CHUNK, remaining))
                if not chunk:
                    break
                fout.write(chunk)
                remaining -= len(chunk)
    except OSError as e:
        raise BackupIOError(f"{src}: {e.strerror or e}") from None
