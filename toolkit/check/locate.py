"""Decide what a BACKUP argument is: an RDB file, a single AOF file, a Redis 7+ multi-part
AOF (``appendonlydir/`` or its ``.manifest``), or a data directory (then: what Redis would
load from it, given its config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parsers.rdb.constants import MAGICS
from toolkit.errors import BackupIOError
from toolkit.server.config import RedisConfig

RDB = "rdb"
AOF = "aof"  # a single file: commands, possibly after an RDB preamble
MULTIPART = "aof-multipart"


@dataclass
class Located:
    kind: str
    path: Path  # the RDB or AOF file, or the manifest of a multi-part AOF
    notes: list[str] = field(default_factory=list)


def sniff(path: Path) -> str:
    """RDB or AOF, from the first bytes and the name (an RDB-preamble AOF starts like an RDB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise BackupIOError(f"{path}: {e.strerror or e}") from None
    if head.startswith(MAGICS) or not head:  # Redis loads an empty AOF as empty
        return AOF if ".aof" in path.name else RDB
    if head[:1] in (b"*", b"#"):
        return AOF
    return RDB  # let the RDB check say what is wrong with it


def locate(path: Path, config: RedisConfig | None = None) -> Located:
    """What to check for ``path`` (see the module docstring)."""
    if path.is_file():
        if path.name.endswith(".manifest"):
            return Located(MULTIPART, path)
        return Located(sniff(path), path)
    if not path.exists():
        raise BackupIOError(f"{path}: no such file or directory")
    if not path.is_dir():
        raise BackupIOError(f"{path}: not a file or directory")
    manifests = sorted(path.glob("*.manifest"))
    if manifests:
        return Located(MULTIPART, _pick_manifest(path, manifests, config))
    return _data_dir(path, config)


def _pick_manifest(folder: Path, manifests: list[Path], config: RedisConfig | None) -> Path:
    name = (config.get("appendfilename") if config else "appendonly.aof") + ".manifest"
    if folder / name in manifests:
        return folder / name
    if len(manifests) == 1:
        return manifests[0]
    names = ", ".join(m.name for m in manifests)
    raise BackupIOError(f"{folder}: several manifests ({names}); name the one to check")


def _data_dir(folder: Path, config: RedisConfig | None) -> Located:
    """What Redis would load from its data directory ``folder``."""
    dbfilename = config.get("dbfilename") if config else "dump.rdb"
    dirname = config.get("appenddirname") if config else "appendonlydir"
    aofname = config.get("appendfilename") if config else "appendonly.aof"
    rdb = folder / dbfilename
    aof_dir = folder / dirname
    manifest = aof_dir / f"{aofname}.manifest"
    single = folder / aofname
    notes: list[str] = []
    if config is None:
        notes.append("no --config: assuming Redis's defaults (appendonly no, dbfilename dump.rdb)")
    if config is not None and config.appendonly:
        others = [p.name for p in (rdb,) if p.exists()]
        also = f"; {others[0]} is here too and Redis ignores it" if others else ""
        if manifest.is_file():
            notes.append(f"appendonly yes: Redis loads {dirname}/{manifest.name}{also}")
            return Located(MULTIPART, manifest, notes)
        if single.is_file():
            notes.append(
                f"appendonly yes: Redis loads {aofname} (a single-file AOF of Redis < 7; "
                f"Redis 7+ turns it into {dirname}/ on start){also}"
            )
            return Located(AOF, single, notes)
        raise BackupIOError(
            f"{folder}: appendonly yes, but neither {dirname}/{manifest.name} nor {aofname} "
            "is here: Redis would start empty"
        )
    if rdb.is_file():
        extra = [p.name for p in (aof_dir, single) if p.exists()]
        if extra:
            notes.append(f"Redis loads {dbfilename}; {', '.join(extra)} also here, not loaded")
        return Located(RDB, rdb, notes)
    if manifest.is_file() or single.is_file():
        found = manifest if manifest.is_file() else single
        raise BackupIOError(
            f"{folder}: no {dbfilename}, but {found.relative_to(folder)} is here: "
            "Redis loads it only with appendonly yes (pass --config, or the file itself)"
        )
    raise BackupIOError(f"{folder}: no {dbfilename}, {dirname}/ or {aofname} here")
