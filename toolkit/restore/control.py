"""Save, stop and start the target server, and wait for it: the restore's process control.

Stopping never drops an acknowledged write: ``SHUTDOWN SAVE`` (with ``appendonly yes`` a plain
``SHUTDOWN``, which flushes and fsyncs the AOF, unless the AOF reports a write error), and if
the server cannot save it refuses to go and keeps running: :class:`StillRunning` says so, and
nothing else has changed. ``--stop-cmd`` is run only with writes held off since the save
(the procedure pauses them) or with the AOF on, so that what it loses was never acknowledged.

Starting runs the same binary as the same user (see process.py), or ``--start-cmd``, in a
session of its own (it outlives rbkit), and watches it: the process it started, the
redis-server that appears in the data directory (a daemonized server, ``systemctl start``),
and the address. A server that dies while loading is noticed at once, and so is a command that
exits 0 with no server left running; a command that hangs, bringing nothing up within
:data:`START_GRACE` seconds, is killed with its process group, and the server is then started
directly from its config file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from toolkit.errors import RbkitError
from toolkit.lifeline import pid_alive
from toolkit.restore.target import Target
from toolkit.restore.writes import REFUSE_WRITES, WritePause
from toolkit.server.identity import RunAs, server_in
from toolkit.steps import KEYS, Progress, ProgressFactory, no_progress, progress_of
from toolkit.text import utc_iso

Say = Callable[[str], None]

START_GRACE = 30.0  # seconds for a started command to bring up something that answers
DAEMON_GRACE = 5.0  # after a start command exits 0, seconds for the server to show up
POLL = 0.05


class ControlError(RbkitError):
    """The target could not be saved, stopped or started."""


class StillRunning(ControlError):
    """The target refused to stop (it could not save its data): it runs on, unchanged."""


class NothingCameUp(ControlError):
    """A start command that still runs brought nothing up in time (it hangs)."""


def _quiet(_text: str) -> None:
    pass


@dataclass
class Answer:
    """What the target's address says right now."""

    up: bool
    run_id: str | None = None
    pid: int | None = None
    loading: bool = False
    loaded: tuple[int, int] | None = None  # while loading: bytes loaded, of the total


def look(target: Target) -> Answer:
    """Whether something answers at the target's address, and which server it is."""
    if target.url is None:
        return Answer(False)
    client = target.client(timeout=2)
    try:
        info = client.info("server")
        persistence = client.info("persistence")
        loading = bool(int(persistence.get("loading", 0)))
        loaded = None
        if loading and "loading_total_bytes" in persistence:
            loaded = (
                int(persistence.get("loading_loaded_bytes", 0)),
                int(persistence["loading_total_bytes"]),
            )
        return Answer(
            True,
            str(info.get("run_id")) if info.get("run_id") else None,
            int(info["process_id"]) if info.get("process_id") else None,
            loading,
            loaded,
        )
    except redis.BusyLoadingError:
        return Answer(True, loading=True)
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return Answer(False)
    except redis.ResponseError:  # NOAUTH and friends: something answers
        return Answer(True)
    finally:
        client.close()


def is_up(target: Target) -> bool:
    """True when the target answers (loading or not)."""
    return look(target).up


def save(target: Target, timeout: float, progress: ProgressFactory = no_progress) -> str:
    """BGSAVE and wait for it to end (``progress``: the keys saved of the total, as INFO
    persistence gives them on Redis 7.0+); a failed save refuses the restore before any
    change."""
    client = target.client(timeout=30)
    bar = progress("saving the target (BGSAVE)", KEYS)
    try:
        _wait(lambda: not int(client.info("persistence")["rdb_bgsave_in_progress"]), timeout)
        before = int(client.info("persistence").get("rdb_last_save_time", 0))
        client.bgsave()
        started = time.monotonic()
        while True:
            info = client.info("persistence")
            if not int(info["rdb_bgsave_in_progress"]):
                break
            if time.monotonic() - started > timeout:
                raise ControlError(f"BGSAVE still running after {timeout:.0f} s")
            if bar is not None:
                done = int(info.get("current_save_keys_processed", 0))
                bar(done, int(info.get("current_save_keys_total", 0)))
            time.sleep(POLL)
        if info.get("rdb_last_bgsave_status") != "ok":
            raise ControlError(
                "BGSAVE failed (rdb_last_bgsave_status "
                f"{info.get('rdb_last_bgsave_status')}); see the server's log"
            )
        after = int(info.get("rdb_last_save_time", 0))
        return f"BGSAVE ok (lastsave {utc_iso(before * 1000)} -> {utc_iso(after * 1000)})"
    except redis.RedisError as e:
        raise ControlError(f"saving the target: {e}") from None
    finally:
        if bar is not None:
            bar.close()
        client.close()


def shutdown_mode(client: redis.Redis, appendonly: bool) -> str:
    """SAVE, or (AOF on and writing fine) nothing: the AOF is flushed and fsynced anyway."""
    if not appendonly:
        return "SAVE"
    info = client.info("persistence")
    fine = info.get("aof_last_write_status", "ok") == "ok"
    return "" if fine else "SAVE"


def stop(target: Target, stop_cmd: str | None, timeout: float, pid: int | None = None) -> str:
    """Stop the target, every acknowledged write saved, and wait until it is down. Raises
    StillRunning when it refuses (it runs on with its data), ControlError otherwise."""
    pid = pid or target.pid
    how = stop_cmd
    if stop_cmd is None and is_up(target):
        client = target.client(timeout=timeout)
        try:
            if pid is None:
                with contextlib.suppress(redis.RedisError):
                    pid = int(client.info("server")["process_id"])
            mode = shutdown_mode(client, target.appendonly)
            how = f"SHUTDOWN {mode}".strip()
            client.execute_command(*how.split())
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the connection closing is the answer of a server that went
        except redis.ResponseError as e:
            raise StillRunning(
                f"{how} failed ({e}{_log_hint(target)}): the target is still running with "
                "its data, unchanged, and it holds the only copy of its latest writes; fix "
                "what stops it from saving (disk space, permissions, a file in the way) and "
                "run the restore again"
            ) from None
        finally:
            client.close()
    elif stop_cmd is not None:
        try:
            _run(stop_cmd, timeout, "--stop-cmd")
        except ControlError as e:
            if is_up(target):
                raise StillRunning(f"{e}; the target is still running, unchanged") from None
    _wait(lambda: not is_up(target) and (pid is None or not pid_alive(pid)), timeout, "stop")
    return f"{how}; down" + (f" (pid {pid} gone)" if pid else "")


def stop_started(
    target: Target, appendonly: bool, keep_data: bool, timeout: float, pid: int | None
) -> str:
    """Stop a server rbkit started (or found started) after the restore's stop, writes held
    off: with ``keep_data`` by SHUTDOWN SAVE (refusing, and running on, if it cannot save);
    without, when it holds no write of a client, by SHUTDOWN NOSAVE."""
    client = target.client(timeout=timeout)
    try:
        how = f"SHUTDOWN {shutdown_mode(client, appendonly) if keep_data else 'NOSAVE'}".strip()
        client.execute_command(*how.split())
    except (redis.ConnectionError, redis.TimeoutError):
        pass
    except redis.ResponseError as e:
        raise StillRunning(f"{how} failed ({e}): the server runs on, unchanged") from None
    finally:
        client.close()
    _wait(lambda: not is_up(target) and (pid is None or not pid_alive(pid)), timeout, "stop")
    return f"{how}; down" + (f" (pid {pid} gone)" if pid else "")


def start(
    target: Target,
    start_cmd: str | None,
    timeout: float,
    say: Say = _quiet,
    *,
    run_as: RunAs | None = None,
    pause: WritePause | None = None,
    progress: ProgressFactory = no_progress,
) -> str:
    """Start the target and wait until it has loaded its data; ``pause`` holds client writes
    off from its first answer on. Returns what was done."""
    if start_cmd is None:
        return _start(target, None, timeout, say, run_as, pause, progress)
    try:
        return _start(target, start_cmd, timeout, say, run_as, pause, progress)
    except NothingCameUp as e:
        if is_up(target) or target.executable is None or target.config.path is None:
            raise
        say(f"{e}; starting {target.executable} {target.config.path} instead")
        how = _start(target, None, timeout, say, run_as, pause, progress)
        return f"--start-cmd failed ({e}); {how}"


def _start(
    target: Target,
    start_cmd: str | None,
    timeout: float,
    say: Say,
    run_as: RunAs | None,
    pause: WritePause | None,
    progress: ProgressFactory = no_progress,
) -> str:
    extra: dict[str, object] = {}
    if start_cmd is not None:
        how, args, cwd = start_cmd, start_cmd, None
    else:
        if target.executable is None or target.config.path is None:
            raise ControlError("no redis-server and config file to start the target with")
        args = [os.fspath(target.executable), os.fspath(target.config.path)]
        how, cwd = shlex.join(args), target.config.path.parent
        if pause is not None:  # no write accepted before rbkit's pause (see writes.py)
            args += REFUSE_WRITES
            pause.refusing = True
        if run_as is not None:
            extra = run_as.popen_args()
            if extra:
                how += f" (as {run_as})"
    # Its stderr goes to an unnamed file: read if it fails, never a pipe that fills up.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            args,
            shell=start_cmd is not None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
            **extra,  # type: ignore[arg-type]
        )
        name = f"--start-cmd {start_cmd!r}" if start_cmd is not None else "redis-server"
        try:
            with progress_of(progress, "loading the backup (the target's own load)") as bar:
                wait_loaded(target, timeout, bar, process, name, pause)
        except BaseException as e:
            if process.poll() is None and not is_up(target):
                with contextlib.suppress(OSError):  # a hanging command: all of it
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if isinstance(e, ControlError) and process.poll() not in (None, 0):
                errors.seek(0)
                lines = errors.read().decode(errors="replace").strip().splitlines()
                if lines:
                    raise ControlError(f"{e} ({lines[-1].strip()})") from None
            raise
    return how


def wait_loaded(
    target: Target,
    timeout: float,
    progress: Progress | None = None,
    process: subprocess.Popen[bytes] | None = None,
    name: str = "redis-server",
    pause: WritePause | None = None,
) -> None:
    """Wait until the target answers and has loaded its data, telling ``progress`` the bytes
    loaded of the total (INFO persistence). Ends early
    with ControlError when the ``process`` that starts it fails, when the server it brought
    up dies, or when nothing comes up within :data:`START_GRACE` seconds."""
    began = time.monotonic()
    deadline = began + timeout
    grace = began + min(timeout, START_GRACE)
    exited_at: float | None = None
    server_pid: int | None = None
    last_look = 0.0
    refused_pauses = 0
    while True:
        now = time.monotonic()
        if process is not None and process.poll() is not None:
            if process.returncode != 0:
                raise ControlError(
                    f"{name} exited with {process.returncode} while starting" + _log_hint(target)
                )
            exited_at = exited_at or now
        if pause is not None and not pause.active:
            # The pause is the probe: it goes in with the first connection that succeeds,
            # even while the server loads, before any client can have written much.
            with contextlib.suppress(redis.RedisError, OSError):
                pause.hold()
        answer = look(target)
        if answer.up:
            if not answer.loading and answer.run_id is not None:
                if pause is None or pause.active or refused_pauses > 20:
                    return  # (a server that keeps refusing the pause: its writes are counted)
                refused_pauses += 1
                continue  # it came up just after the pause was tried: try it first again
            server_pid = answer.pid or server_pid
            if progress is not None and answer.loaded is not None:
                progress(*answer.loaded)
        elif now - last_look > 0.2:  # who is starting: the process, or one it left behind
            last_look = now
            found = server_in(target.data_dir)
            if found is not None:
                server_pid = found
            elif server_pid is not None and not pid_alive(server_pid):
                raise ControlError(
                    f"the redis-server it started (pid {server_pid}) died while starting"
                    + _log_hint(target)
                )
            elif exited_at is not None and now - exited_at > DAEMON_GRACE:
                raise ControlError(
                    f"{name} exited with 0, but no redis-server runs in {target.data_dir} "
                    f"and nothing answers at {target.address}" + _log_hint(target)
                )
            elif now > grace and (process is None or process.poll() is None):
                raise NothingCameUp(
                    f"{name}: nothing answers at {target.address} after "
                    f"{now - began:.0f} s and no redis-server runs in {target.data_dir}"
                    + _log_hint(target)
                )
        if now > deadline:
            raise NothingCameUp(
                f"the target did not come up within {timeout:.0f} s" + _log_hint(target)
            )
        # Poll hard until it first answers: the sooner rbkit's pause is in, the fewer writes
        # a server it could not start refusing them (--start-cmd) takes before it.
        time.sleep(0.002 if pause is not None and not pause.active else POLL)


def _log_hint(target: Target) -> str:
    log = target.setting("logfile")
    if not log:
        return ""
    path = Path(log)
    if not path.is_absolute() and target.config.path is not None:
        path = target.config.path.parent / path
    try:
        lines = path.read_text(errors="replace").splitlines()[-3:]
    except OSError:
        return f" (see {path})"
    return f" ({path}: " + " | ".join(line.strip() for line in lines) + ")"


def _run(command: str, timeout: float, option: str) -> None:
    """Run ``command`` in a session of its own; killed with its process group on timeout."""
    process = subprocess.Popen(
        command,
        shell=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ControlError(f"{option} {command!r} did not finish within {timeout:.0f} s") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise ControlError(
            f"{option} {command!r} exited with {process.returncode}"
            + (f": {lines[-1]}" if lines else "")
        )


def _wait(done: Callable[[], bool], timeout: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ControlError(f"the target did not {what or 'finish'} within {timeout:.0f} s")
        time.sleep(POLL)
