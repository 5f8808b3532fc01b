"""What must not outlive rbkit: scratch servers and temporary directories.

A ``finally`` does not run when rbkit is killed (SIGKILL, the OOM killer). So a small watcher
process, started on first use in a session of its own, is told over a pipe what to clean up:
``dir PATH`` and ``pid PID START`` lines add, ``-dir PATH`` and ``-pid PID`` lines drop. When
the pipe closes (rbkit exited, however it died) the watcher kills the processes still listed,
if they are still the same processes (their start time is compared), removes the directories
still listed, and exits. rbkit drops what it cleaned up itself, so a normal exit leaves nothing
for the watcher to do.

Scratch servers are also started with the kernel's parent-death signal (:func:`die_with_parent`),
so they go at once, not only when the watcher gets to them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from toolkit.errors import UsageError

_PR_SET_PDEATHSIG = 1
_lock = threading.Lock()
_watcher: subprocess.Popen[bytes] | None = None


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return sys.platform != "linux"


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGKILL when the thread that started it exits (Linux),
    and exits at once if that thread is already gone by the time it asks."""
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None

    def arm() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return arm


def _send(line: str) -> None:
    global _watcher
    with _lock:
        if _watcher is None or _watcher.poll() is not None:
            _watcher = subprocess.Popen(
                [sys.executable, "-m", "toolkit.lifeline"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a kill of rbkit's process group must not reach it
                close_fds=True,
            )
            atexit.register(_close)
        assert _watcher.stdin is not None
        try:
            _watcher.stdin.write(line.encode("utf-8", "surrogateescape") + b"\n")
            _watcher.stdin.flush()
        except OSError:  # the watcher is gone: rbkit's own finally blocks still clean up
            pass


def detach_child() -> None:
    """In a forked child of rbkit: close its copy of the watcher's pipe. The pipe then closes
    when rbkit dies, even while the child still runs, and the watcher ends the child (listed
    by :func:`watch_process`) and removes rbkit's folders. (No lock: another thread may have
    held it at the fork.)"""
    global _watcher
    watcher, _watcher = _watcher, None
    if watcher is not None and watcher.stdin is not None:
        with contextlib.suppress(OSError):
            watcher.stdin.close()


def _close() -> None:
    if _watcher is not None and _watcher.stdin is not None:
        with contextlib.suppress(OSError):
            _watcher.stdin.close()


def watch_dir(path: Path) -> None:
    """Remove ``path`` if rbkit dies before :func:`forget_dir`."""
    _send(f"dir {os.fspath(path.absolute())}")


def forget_dir(path: Path) -> None:
    _send(f"-dir {os.fspath(path.absolute())}")


@contextlib.contextmanager
def scratch_root(path: Path | None) -> Iterator[None]:
    """Within the block, every scratch directory and temporary file of this process (and of
    the processes it forks) goes under ``path``, as under ``TMPDIR=path`` (``--tmpdir``);
    None changes nothing. Raises UsageError when ``path`` is not a directory."""
    if path is None:
        yield
        return
    if not path.is_dir():
        raise UsageError(f"{path}: the temporary directory does not exist (--tmpdir)")
    old, tempfile.tempdir = tempfile.tempdir, os.fspath(path.absolute())
    try:
        yield
    finally:
        tempfile.tempdir = old


def scratch_dir(prefix: str, parent: Path | None = None) -> Path:
    """A new temporary directory that is removed if rbkit dies (see :func:`remove_dir`)."""
    # Watched before it is made: a kill between the two must not leave it behind.
    base = Path(parent if parent is not None else tempfile.gettempdir())
    while True:
        path = base / f"{prefix}{secrets.token_hex(6)}"
        watch_dir(path)
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            forget_dir(path)


def remove_dir(path: Path) -> None:
    """Remove a :func:`scratch_dir` (or any watched directory) and stop watching it."""
    shutil.rmtree(path, ignore_errors=True)
    forget_dir(path)


def watch_process(pid: int) -> None:
    """Kill process ``pid`` if rbkit dies before :func:`forget_process`."""
    _send(f"pid {pid} {start_time(pid) or 0}")


def forget_process(pid: int) -> None:
    _send(f"-pid {pid}")


def main() -> None:
    """The watcher: read instructions until the pipe closes, then clean up what is listed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal is for rbkit
    dirs: set[str] = set()
    pids: dict[int, int] = {}
    for raw in sys.stdin.buffer:
        what, _, rest = raw.decode("utf-8", "surrogateescape").rstrip("\n").partition(" ")
        if what == "dir":
            dirs.add(rest)
        elif what == "-dir":
            dirs.discard(rest)
        elif what == "pid":
            pid, started = (int(x) for x in rest.split())
            pids[pid] = started
        elif what == "-pid":
            pids.pop(int(rest), None)
    killed = [pid for pid, started in pids.items() if start_time(pid) == started]
    for pid in killed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.01)  # gone before its directory is removed under it
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
