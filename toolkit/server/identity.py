"""The target's server process as the kernel sees it (Linux /proc): which binary it runs, as
which user, and which redis-server runs in a data directory.

The restore starts the target again exactly as it ran: the same binary (not whatever
``redis-server`` PATH finds) as the same user (not root, the user running rbkit).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.lifeline import pid_alive

SERVER_NAMES = ("redis-server", "valkey-server")


@dataclass(frozen=True)
class RunAs:
    """A user to run the server as: ids and supplementary groups."""

    uid: int
    gid: int
    groups: tuple[int, ...] = field(default=())

    @classmethod
    def of_path(cls, path: Path) -> RunAs:
        """The owner of ``path`` (a stopped target: its data directory's owner)."""
        st = path.stat()
        try:
            import pwd

            name = pwd.getpwuid(st.st_uid).pw_name
            groups = tuple(os.getgrouplist(name, st.st_gid))
        except (KeyError, OSError):
            groups = (st.st_gid,)
        return cls(st.st_uid, st.st_gid, groups)

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid() and self.gid == os.getegid()

    def popen_args(self) -> dict[str, object]:
        """What ``subprocess.Popen`` needs to start a process as this user ({} when that is
        who rbkit runs as)."""
        if self.is_current:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    executable: Path | None  # a path that starts this binary as a server; None: not found
    run_as: RunAs
    note: str | None = None  # why no executable was found


def _status_ids(pid: int) -> RunAs:
    uid = gid = -1
    groups: tuple[int, ...] = ()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "Uid":
            uid = int(value.split()[1])  # the effective id
        elif key == "Gid":
            gid = int(value.split()[1])
        elif key == "Groups":
            groups = tuple(int(g) for g in value.split())
    return RunAs(uid, gid, groups)


def _environ_path(pid: int) -> str | None:
    try:
        for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if item.startswith(b"PATH="):
                return item[5:].decode(errors="replace")
    except OSError:
        pass
    return None


def inspect(pid: int, info_executable: Path | None = None) -> ServerProcess | None:
    """What process ``pid`` runs and as whom; None if it cannot be read (gone, or not ours).

    The binary is ``/proc/PID/exe``; but a server binary decides its role from the name it was
    started by (Debian's ``redis-server`` is a link to ``redis-check-rdb``), so the path
    returned is one that resolves to that binary under a server's name: the process's own
    ``argv[0]``, INFO's ``executable``, or a link of that name beside the binary."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        # Redis rewrites its command line as its process title, "ARGV0 ADDR [MODE]".
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].split(b" ")[0].decode()
        run_as = _status_ids(pid)
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    if exe.endswith(" (deleted)"):
        note = (
            f"the binary it runs ({exe.removesuffix(' (deleted)')}) was replaced on disk since "
            "it started (an upgrade?)"
        )
        return ServerProcess(pid, None, run_as, note)
    name = Path(argv0).name
    candidates = [Path(argv0)] if os.path.isabs(argv0) else []
    if info_executable is not None:
        candidates.append(info_executable)
    found = shutil.which(name, path=_environ_path(pid)) if name else None
    if found:
        candidates.append(Path(found))
    candidates += [Path(exe).parent / n for n in (name, *SERVER_NAMES) if n]
    real = os.path.realpath(exe)
    for path in candidates:
        named = path.name in SERVER_NAMES or path.name == name
        if named and path.is_file() and os.path.realpath(path) == real:
            return ServerProcess(pid, path.absolute(), run_as)
    if Path(exe).name in SERVER_NAMES:
        return ServerProcess(pid, Path(exe), run_as)
    note = f"no path starts {exe} as a server (it was started as {argv0!r})"
    return ServerProcess(pid, None, run_as, note)


def server_in(directory: Path) -> int | None:
    """The pid of a redis-server whose working directory is ``directory`` (Redis changes into
    its ``dir`` as it reads its config), or None."""
    try:
        want = directory.resolve()
        entries = list(Path("/proc").iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0]
            if comm not in SERVER_NAMES and not any(n.encode() in argv0 for n in SERVER_NAMES):
                continue
            if (entry / "cwd").resolve() == want and pid_alive(int(entry.name)):
                return int(entry.name)
        except OSError:
            continue
    return None
