"""The restore's files in the data directory: its private copy of the backup, the current
files it keeps, and the new ones it installs.

The backup is copied once, before it is checked, into a private folder in the data directory
(:func:`private_copy`, each file's SHA-256 taken as it is written); the check, the stage and
the install all use that copy, and each file's digest is taken again just before it is
linked into place, so what is installed is exactly what was checked.

Every change is a rename within the data directory's filesystem (atomic), made durable with
an fsync of the directory. Nothing here deletes a file that was there before: kept files move
into the rollback folder, and installed files that a rollback removes move into its
``rejected/`` subfolder. Only rbkit's own copies and half-written temporaries are deleted.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from parsers.aof.manifest import parse_manifest
from toolkit import lifeline
from toolkit.check.locate import MULTIPART, Located
from toolkit.errors import RbkitError
from toolkit.restore.journal import fsync_dir
from toolkit.server.identity import RunAs

TMP_PREFIX = ".rbkit-install-"
PRIVATE_PREFIX = ".rbkit-restore-"
REJECTED = "rejected"
CHUNK = 8 << 20


class ChangedError(RbkitError):
    """A file of the private copy no longer has the digest it had when it was checked."""


@dataclass
class PrivateCopy:
    """The restore's own copy of the backup, in a private folder of the data directory."""

    directory: Path
    backup: Path  # the copy of the file, or the manifest in the copy of an appendonlydir
    digests: dict[str, str] = field(default_factory=dict)  # name in directory -> sha256

    def add(self, path: Path) -> None:
        """Record the digest of a file rbkit wrote into the folder (an AOF's converted RDB)."""
        self.digests[os.fspath(path.relative_to(self.directory))] = sha256_of(path)

    def verify(self, path: Path) -> None:
        """Raise ChangedError unless ``path`` (in the folder) still has its digest."""
        name = os.fspath(path.relative_to(self.directory))
        if sha256_of(path) != self.digests.get(name):
            raise ChangedError(
                f"{name} changed after it was checked (sha256 {self.digests.get(name)}): "
                "not installing it"
            )

    def remove(self) -> None:
        lifeline.remove_dir(self.directory)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_hashed(src: Path, dest: Path) -> str:
    """Copy ``src`` to a new file ``dest`` (fsynced); the SHA-256 of the copy, read back."""
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        _copy_in_kernel(fin.fileno(), fout.fileno())
        os.fsync(fout.fileno())
    return sha256_of(dest)


# copy_file_range's answers where it cannot copy these files (another file system, a pipe, an
# old kernel): the copy goes on by read and write. Any other error (ENOSPC) ends the copy.
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF}
)


def _copy_in_kernel(fin: int, fout: int) -> None:
    """Copy what is left of ``fin`` to the end of ``fout`` without passing the bytes through
    rbkit (copy_file_range), as far as the kernel can; the rest by read and write."""
    size = os.fstat(fin).st_size
    copied = 0
    try:
        while copied < size and (n := os.copy_file_range(fin, fout, min(CHUNK, size - copied))):
            copied += n
    except OSError as e:
        if e.errno not in _NO_KERNEL_COPY:
            raise
    while chunk := os.read(fin, CHUNK):  # (both offsets are where the kernel's copy stopped)
        view = memoryview(chunk)
        while view:
            view = view[os.write(fout, view) :]


def backup_files(found: Located) -> list[Path]:
    """The files a copy of the backup takes: the file, or every file of an appendonlydir (a
    damaged manifest, restored with --force, is then judged by the server)."""
    if found.kind != MULTIPART:
        return [found.path]
    return sorted(p for p in found.path.parent.iterdir() if p.is_file())


def private_copy(found: Located, data_dir: Path) -> PrivateCopy:
    """Copy the backup ``found`` into a new private folder of ``data_dir``, hashing it."""
    directory = lifeline.scratch_dir(PRIVATE_PREFIX, data_dir)
    try:
        into = directory
        if found.kind == MULTIPART:
            into = directory / found.path.parent.name
            into.mkdir()
        copy = PrivateCopy(directory, into / found.path.name)
        for src in backup_files(found):
            dest = into / src.name
            copy.digests[os.fspath(dest.relative_to(directory))] = _copy_hashed(src, dest)
        return copy
    except BaseException:
        lifeline.remove_dir(directory)
        raise


def remove_stale_copies(data_dir: Path) -> None:
    """Remove private copies left by a restore that is no longer running (its lifeline watcher
    normally does; this covers a machine that went down with it)."""
    for path in data_dir.glob(f"{PRIVATE_PREFIX}*"):
        if path.is_dir() and not _in_use(path):
            shutil.rmtree(path, ignore_errors=True)


def _in_use(path: Path) -> bool:
    from toolkit.restore.journal import lock_holder

    return lock_holder(path.parent) is not None


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
    """A multi-part AOF's base and incr files, under the target's manifest name. Raises
    FormatError when the manifest cannot be read (a backup restored with --force)."""
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


def owner_for(data_dir: Path, names: list[str], run_as: RunAs | None = None) -> Owner:
    """The owner and mode to give installed files: the user the server runs as (``run_as``),
    with the mode of the data file there now (the first of ``names`` that exists); without a
    data file, the data directory's owner and mode 0644."""
    found = Owner.of(data_dir)
    for name in names:
        path = data_dir / name
        if path.is_file():
            found = Owner.of(path)
            break
        if path.is_dir():
            child = next((c for c in sorted(path.iterdir()) if c.is_file()), None)
            if child is not None:
                found = Owner.of(child)
                break
    if run_as is None:
        return found
    return Owner(run_as.uid, run_as.gid, found.mode)


def move_all(names: list[str], src: Path, dest: Path) -> list[str]:
    """Rename each of ``names`` that exists from ``src`` into ``dest``; returns those moved."""
    moved = []
    for name in names:
        if os.path.lexists(src / name):
            dest.mkdir(exist_ok=True)
            if os.path.lexists(dest / name):
                raise FileExistsError(f"{dest / name} already exists; not overwriting it")
            os.rename(src / name, dest / name)
            moved.append(name)
    if moved:
        fsync_dir(src)
        fsync_dir(dest)
    return moved


def _place(src: Path, dest: Path, owner: Owner, private: PrivateCopy | None) -> None:
    if private is not None and src.is_relative_to(private.directory):
        private.verify(src)
        owner.apply(src)
        os.link(src, dest)  # the copy stays, for the verification to read values from
        return
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
        fout.flush()
        os.fsync(fout.fileno())
    owner.apply(dest)


def _write(text: str, dest: Path, owner: Owner) -> None:
    with open(dest, "x", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    owner.apply(dest)


def install(item: Item, data_dir: Path, owner: Owner, private: PrivateCopy | None = None) -> None:
    """Put ``item`` in place in ``data_dir``: under a temporary name first (files of the
    ``private`` copy are hard-linked, after their digest is taken again; others are copied
    and fsynced), then renamed into place."""
    tmp = data_dir / f"{TMP_PREFIX}{item.name}"
    remove_temporary(data_dir, item.name)
    if item.source is not None:
        _place(item.source, tmp, owner, private)
    else:
        tmp.mkdir()
        for src, name in item.files:
            _place(src, tmp / name, owner, private)
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
