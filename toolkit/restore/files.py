"""The restore's file moves in the data directory: keep the current files, install the new.

Every change is a rename within the data directory's filesystem (atomic), made durable with
an fsync of the directory. Nothing here deletes a file that was there before: kept files move
into the rollback folder, and installed files that a rollback removes move into its
``rejected/`` subfolder. Only rbkit's own half-written temporaries are deleted.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from parsers.aof.manifest import parse_manifest
from toolkit.restore.journal import fsync_dir

TMP_PREFIX = ".rbkit-install-"
REJECTED = "rejected"


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    mode: int  # permission bits of a file

    @classmethod
    def of(cls, path: Path, default_mode: int = 0o644) -> Owner:
        st = path.stat()
        mode = stat.S_IMODE(st.st_mode) if path.is_file() else default_mode
        return cls(st.st_uid, st.st_gid, mode)

    def apply(self, path: Path, directory: bool = False) -> None:
        """Give ``path`` this owner (when rbkit may) and mode; a directory gets x where the
        file mode has r (0640 -> 0750)."""
        if os.geteuid() == 0 or self.uid == os.geteuid():
            os.chown(path, self.uid, self.gid)
        os.chmod(path, (self.mode | (self.mode & 0o444) >> 2) if directory else self.mode)


@dataclass
class Item:
    """One entry of the data directory the restore installs: a file, or a directory of files."""

    name: str  # its name in the data directory
    files: list[tuple[Path, str]] = field(default_factory=list)  # (source, name) for a dir
    source: Path | None = None  # for a file
    text: dict[str, str] = field(default_factory=dict)  # files written from text (a manifest)

    @property
    def is_dir(self) -> bool:
        return self.source is None

    def size(self) -> int:
        paths = [self.source] if self.source else [p for p, _ in self.files]
        return sum(p.stat().st_size for p in paths)

    def describe(self) -> str:
        if self.source is not None:
            return f"{self.name} (from {self.source})"
        names = [n for _, n in self.files] + list(self.text)
        return f"{self.name}/ ({', '.join(names)})"


def rdb_as_base(rdb: Path, dirname: str, aofname: str) -> Item:
    """An RDB installed as the base of a fresh Redis 7+ multi-part AOF."""
    base = f"{aofname}.1.base.rdb"
    return Item(
        dirname,
        files=[(rdb, base)],
        text={f"{aofname}.manifest": f"file {base} seq 1 type b\n"},
    )


def multipart_copy(manifest: Path, dirname: str, aofname: str) -> Item:
    """A multi-part AOF's base and incr files, under the target's manifest name."""
    parsed = parse_manifest(manifest.read_bytes())
    files = [
        (manifest.parent / e.name, e.name)
        for e in parsed.entries
        if e.type != "h" and (manifest.parent / e.name).exists()
    ]
    text = {f"{aofname}.manifest": manifest.read_text(encoding="utf-8", errors="surrogateescape")}
    return Item(dirname, files=files, text=text)


def present(data_dir: Path, names: list[str]) -> list[str]:
    return [n for n in names if os.path.lexists(data_dir / n)]


def owner_for(data_dir: Path, names: list[str]) -> Owner:
    """The owner and mode to give installed files: those of the data file there now (the
    first of ``names`` that exists), else the data directory's owner with mode 0644."""
    for name in names:
        path = data_dir / name
        if path.is_file():
            return Owner.of(path)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file():
                    return Owner.of(child)
    return Owner.of(data_dir)


def move_all(names: list[str], src: Path, dest: Path) -> list[str]:
    """Rename each of ``names`` that exists from ``src`` into ``dest``; returns those moved."""
    moved = []
    dest.mkdir(exist_ok=True)
    for name in names:
        if os.path.lexists(src / name):
            if os.path.lexists(dest / name):
                raise FileExistsError(f"{dest / name} already exists; not overwriting it")
            os.rename(src / name, dest / name)
            moved.append(name)
    fsync_dir(src)
    fsync_dir(dest)
    return moved


def _copy(src: Path, dest: Path, owner: Owner) -> None:
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        shutil.copyfileobj(fin, fout, 8 << 20)
        fout.flush()
        os.fsync(fout.fileno())
    owner.apply(dest)


def _write(text: str, dest: Path, owner: Owner) -> None:
    with open(dest, "x", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    owner.apply(dest)


def install(item: Item, data_dir: Path, owner: Owner) -> None:
    """Copy ``item`` to a temporary name in ``data_dir``, fsync, rename it into place."""
    tmp = data_dir / f"{TMP_PREFIX}{item.name}"
    remove_temporary(data_dir, item.name)
    if item.source is not None:
        _copy(item.source, tmp, owner)
    else:
        tmp.mkdir()
        for src, name in item.files:
            _copy(src, tmp / name, owner)
        for name, text in item.text.items():
            _write(text, tmp / name, owner)
        fsync_dir(tmp)
        owner.apply(tmp, directory=True)
    if os.path.lexists(data_dir / item.name):
        raise FileExistsError(f"{data_dir / item.name} is in the way (it should have been kept)")
    os.rename(tmp, data_dir / item.name)
    fsync_dir(data_dir)


def rejected_dir(folder: Path) -> Path:
    """A new folder inside ``folder`` for what a rollback takes out of the data directory."""
    path, n = folder / REJECTED, 1
    while path.exists():
        n += 1
        path = folder / f"{REJECTED}-{n}"
    return path


def remove_temporary(data_dir: Path, name: str) -> None:
    """Delete a half-written temporary of rbkit's own (a restore cut off while copying)."""
    tmp = data_dir / f"{TMP_PREFIX}{name}"
    if tmp.is_dir():
        shutil.rmtree(tmp)
    elif os.path.lexists(tmp):
        tmp.unlink()
