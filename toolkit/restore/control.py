"""Save, stop and start the target server, and wait for it: the restore's process control.

Stopping turns the save points off first (``CONFIG SET save ""``), so that no shutdown save can
write a file on the way down, then shuts down (or runs ``--stop-cmd``) and waits until the
process is gone and the port is closed. Starting runs ``--start-cmd`` or ``redis-server
CONFIG`` in a session of its own (it outlives rbkit) and waits until the server has loaded its
data; the command may return (``systemctl start``, ``daemonize yes``) or stay in the
foreground as the server: only its exiting with an error ends the wait early.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from toolkit.restore.journal import pid_alive
from toolkit.restore.target import Target

Say = Callable[[str], None]


class ControlError(Exception):
    """The target could not be saved, stopped or started."""


def _quiet(_text: str) -> None:
    pass


def every(seconds: float, say: Say) -> Say:
    """``say``, but at most once per ``seconds`` (progress lines while waiting)."""
    last = [0.0]

    def throttled(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            say(text)

    return throttled


def is_up(target: Target) -> bool:
    """True when the target answers PING (loading or not)."""
    if target.url is None:
        return False
    client = target.client(timeout=2)
    try:
        client.ping()
        return True
    except redis.BusyLoadingError:
        return True
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    except redis.ResponseError:  # NOAUTH and friends: something answers
        return True
    finally:
        client.close()


def save(target: Target, timeout: float, say: Say = _quiet) -> str:
    """BGSAVE and wait for it to end; a failed save refuses the restore before any change."""
    say = every(2.0, say)
    client = target.client(timeout=30)
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
            say(f"saving: {time.monotonic() - started:.0f} s")
            time.sleep(0.05)
        if info.get("rdb_last_bgsave_status") != "ok":
            raise ControlError(
                "BGSAVE failed (rdb_last_bgsave_status "
                f"{info.get('rdb_last_bgsave_status')}); see the server's log"
            )
        after = int(info.get("rdb_last_save_time", 0))
        return f"BGSAVE ok (lastsave {before} -> {after})"
    except redis.RedisError as e:
        raise ControlError(f"saving the target: {e}") from None
    finally:
        client.close()


def stop(target: Target, stop_cmd: str | None, save_on_shutdown: bool, timeout: float) -> str:
    """Stop the target and wait until it is down. Returns what was done."""
    pid = target.pid
    if is_up(target):
        client = target.client(timeout=timeout)
        try:
            client.config_set("save", "")
            if pid is None:
                with contextlib.suppress(redis.RedisError):
                    pid = int(client.info("server")["process_id"])
            if stop_cmd is None:
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    client.shutdown(save=save_on_shutdown, nosave=not save_on_shutdown)
        except redis.ResponseError as e:
            raise ControlError(f"stopping the target: {e}") from None
        finally:
            client.close()
    if stop_cmd is not None:
        _run(stop_cmd, timeout, "--stop-cmd")
    _wait(lambda: not is_up(target) and (pid is None or not pid_alive(pid)), timeout, "to stop")
    how = stop_cmd or ("SHUTDOWN SAVE" if save_on_shutdown else "SHUTDOWN NOSAVE")
    return f"{how}; down" + (f" (pid {pid} gone)" if pid else "")


def start(target: Target, start_cmd: str | None, timeout: float, say: Say = _quiet) -> str:
    """Start the target and wait until it has loaded its data. Returns what was done."""
    if start_cmd is not None:
        how, args, cwd = start_cmd, start_cmd, None
    else:
        if target.executable is None or target.config.path is None:
            raise ControlError("no redis-server and config file to start the target with")
        args = [os.fspath(target.executable), os.fspath(target.config.path)]
        how, cwd = shlex.join(args), target.config.path.parent
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
        )
        name = f"--start-cmd {start_cmd!r}" if start_cmd is not None else "redis-server"
        try:
            wait_loaded(target, timeout, say, process, name)
        except ControlError as e:
            if process.poll() not in (None, 0):
                errors.seek(0)
                lines = errors.read().decode(errors="replace").strip().splitlines()
                if lines:
                    raise ControlError(f"{e} ({lines[-1].strip()})") from None
            raise
    return how


def wait_loaded(
    target: Target,
    timeout: float,
    say: Say = _quiet,
    process: subprocess.Popen[bytes] | None = None,
    name: str = "redis-server",
) -> None:
    """Wait until the target answers and ``loading`` is 0, saying the progress; a ``process``
    (called ``name``) that exits with an error ends the wait."""
    deadline = time.monotonic() + timeout
    say = every(2.0, say)
    client = target.client(timeout=5)
    try:
        while True:
            if process is not None and process.poll() not in (None, 0):
                raise ControlError(
                    f"{name} exited with {process.returncode} while starting" + _log_hint(target)
                )
            try:
                info = client.info("persistence")
                if not int(info.get("loading", 0)):
                    return
                say(f"loading: {float(info.get('loading_loaded_perc', 0)):.1f}%")
            except redis.BusyLoadingError:
                say("loading")
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass
            except redis.ResponseError as e:
                raise ControlError(f"{target.address}: {e}") from None
            if time.monotonic() > deadline:
                raise ControlError(
                    f"the target did not come up within {timeout:.0f} s" + _log_hint(target)
                )
            time.sleep(0.05)
    finally:
        client.close()


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
    try:
        done = subprocess.run(
            command, shell=True, timeout=timeout, capture_output=True, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ControlError(f"{option} {command!r} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise ControlError(
            f"{option} {command!r} exited with {done.returncode}" + (f": {err[-1]}" if err else "")
        )


def _wait(done: Callable[[], bool], timeout: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ControlError(f"the target did not {what or 'finish'} within {timeout:.0f} s")
        time.sleep(0.05)
