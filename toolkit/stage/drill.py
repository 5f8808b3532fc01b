"""The restore drill (``rbkit restore --stage-only``): prove a backup restorable without
touching production.

Steps 1-3 of the restore (../shared/DESIGN.md, "Restore, step by step"): the gate (check the
backup; an invalid one is refused unless forced), the preflight (can this redis-server read
it: RDB version and magic, multi-part AOF, commands, modules, databases, disk room), and the
stage: load the backup into a scratch redis-server of that binary on a free loopback port in a
temporary directory, wait for the load to end, read what it holds (toolkit.server.read) and compare
it with the backup (toolkit.stage.compare). The scratch server never saves and is always stopped.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from parsers.errors import FormatError
from parsers.printable import printable
from parsers.rdb.constants import DEFAULT_DATABASES, REDIS_RELEASE_FOR_VERSION
from parsers.rdb.walker import release_for
from toolkit import lifeline
from toolkit.check.backup import check_backup
from toolkit.check.problems import gate
from toolkit.check.result import CheckResult
from toolkit.errors import ServerError
from toolkit.server.process import RedisServer, ServerBinary, find_binaries, free_port
from toolkit.server.read import LiveKeyspace, read_live
from toolkit.stage.compare import BackupKeys, Comparison, backup_keys, compare
from toolkit.steps import KEYS, Progress, ProgressFactory, Step, no_progress, progress_of, timed

Version = tuple[int, ...]
T = TypeVar("T")

# Module types some servers have built in (no --module needed), from that release on.
BUILTIN_TYPES: dict[str, Version] = {"vectorset": (8, 0)}
# Module type names -> the module that provides them, for the refusal sentence.
MODULE_OF_TYPE: dict[str, str] = {
    "graphdata": "FalkorDB or RedisGraph",
    "ReJSON-RL": "RedisJSON",
    "MBbloom--": "RedisBloom",
    "MBbloomCF": "RedisBloom",
    "TSDB-TYPE": "RedisTimeSeries",
    "ft_index0": "RediSearch",
}
# Commands a server-written AOF may hold that older servers do not know (the first release).
COMMAND_SINCE: dict[str, Version] = {
    "FUNCTION": (7, 0),
    "HPEXPIREAT": (7, 4),
    "HPERSIST": (7, 4),
    "HSETEX": (8, 0),
    "HGETEX": (8, 0),
    "HGETDEL": (8, 0),
    "VADD": (8, 0),
    "VREM": (8, 0),
    "VSETATTR": (8, 0),
}
# Valkey reads Redis RDB files up to this version (7.2's).
VALKEY_MAX_REDIS_RDB = 11
VALKEY_RELEASE: dict[int, Version] = {80: (9, 0), 81: (9, 2)}

# Keys whose TTL runs out within this long after the load began are watched on the server.
WATCH_MS = 3600 * 1000
_LOG_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ (?P<level>[.\-*#]) (?P<text>.*)$")
_LOAD_TIME = re.compile(r"DB loaded from (?:disk|append only file): ([\d.]+) seconds")
_LOG_EXPIRED = re.compile(r"keys loaded: (\d+), keys expired: (\d+)")
_LOG_NOISE = ("WARNING Memory overcommit", "WARNING you have Transparent Huge Pages")

VERIFIED = "verified"
MISMATCH = "mismatch"
REFUSED = "refused"
FAILED = "failed"


@dataclass
class StageReport:
    """What a restore drill did and found."""

    backup: str
    outcome: str = VERIFIED  # verified, mismatch, refused, failed
    reason: str | None = None  # one sentence when not verified
    reasons: list[str] = field(default_factory=list)  # each refusal reason on its own
    result: CheckResult | None = None
    binary: ServerBinary | None = None
    modules: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # the scratch server's config
    port: int | None = None
    steps: list[Step] = field(default_factory=list)
    live: LiveKeyspace | None = None
    keys: BackupKeys | None = None  # the backup's key names, as compared (not in the JSON)
    comparison: Comparison | None = None
    server_load_seconds: float | None = None  # as the server logged it
    notes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # the server's log lines on failure

    @property
    def verified(self) -> bool:
        return self.outcome == VERIFIED

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


class _ScratchServer(RedisServer):
    """A RedisServer whose clients never retry: redis-py's default retries (with backoff)
    would hide for seconds that the server died while loading."""

    def client(self, db: int = 0, **kwargs: object) -> redis.Redis:
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        return super().client(db, **kwargs)


class _Stop(Exception):
    """Ends the drill early; the report already says why."""


# -- preflight -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def is_valkey(path: Path) -> bool:
    """True when the binary at ``path`` is a valkey-server (its --version says so)."""
    try:
        out = subprocess.run([os.fspath(path), "--version"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return b"valkey" in out.stdout.lower()


def _v(text: str) -> Version:
    return tuple(int(x) for x in text.split("."))


def _text(v: Version) -> str:
    return ".".join(map(str, v))


def needed_databases(result: CheckResult) -> int:
    """The ``databases`` setting the backup needs: above its highest db, and at least 16."""
    dbs = set(result.inventory.databases) if result.inventory else set()
    if result.aof is not None:
        dbs.update(result.aof.commands_by_db)
    return max(DEFAULT_DATABASES, max(dbs, default=0) + 1)


def needed_modules(result: CheckResult, version: Version) -> tuple[list[str], list[str]]:
    """Module types, and module commands of an AOF, that a server of ``version`` has no
    built-in support for: (types, commands)."""
    types = [
        t
        for t in (result.inventory.modules if result.inventory else [])
        if not (t in BUILTIN_TYPES and version >= BUILTIN_TYPES[t])
    ]
    commands = []
    if result.aof is not None:
        commands = sorted(c for c in result.aof.unknown_commands if "." in c)
    return types, commands


def refusals(
    result: CheckResult,
    binary: ServerBinary,
    modules: Sequence[Path] = (),
    server_text: str | None = None,
) -> list[str]:
    """Why ``binary`` cannot load this backup (empty: it can), one sentence each; the
    sentences name the server as ``server_text`` (default "this redis-server is X")."""
    out: list[str] = []
    have = binary.version
    valkey = is_valkey(binary.path)
    name = "valkey" if valkey else "redis"
    server = server_text or f"this {name}-server is {binary.version_text}"
    part = ""
    if result.format == "aof" and result.rdb_version is not None:
        part = " (the AOF's RDB part)"
    v = result.rdb_version
    if result.magic == "VALKEY" and v is not None:
        if not valkey:
            out.append(
                f"a VALKEY {v} file{part} (written by {release_for('VALKEY', v)}) cannot be "
                f"loaded by Redis; {server}"
            )
        elif have < VALKEY_RELEASE.get(v, (99,)):
            need = _text(VALKEY_RELEASE.get(v, (99,)))
            out.append(f"VALKEY RDB {v}{part} needs Valkey >= {need}; {server}")
    elif v is not None:
        need = REDIS_RELEASE_FOR_VERSION.get(v)
        if valkey and v > VALKEY_MAX_REDIS_RDB:
            out.append(f"RDB {v}{part} (Redis {need}+) cannot be loaded by Valkey; {server}")
        elif need is None or have < _v(need):
            out.append(f"RDB {v}{part} needs Redis >= {need or '?'}; {server}")
    if result.aof is not None:
        if result.aof.layout == "multi-part" and have < (7, 0):
            out.append(
                f"a multi-part AOF (appendonlydir with a manifest) needs Redis >= 7.0; {server}"
            )
        newer = sorted(
            (COMMAND_SINCE[c], c)
            for c in result.aof.commands
            if c in COMMAND_SINCE and have < COMMAND_SINCE[c]
        )
        for since, command in newer:
            out.append(f"the AOF uses {command}, which needs Redis >= {_text(since)}; {server}")
    types, commands = needed_modules(result, have)
    if not modules:
        name = f"{'valkey' if valkey else 'redis'}-server {binary.version_text}"
        for t in types:
            about = ""
            if t in MODULE_OF_TYPE:
                about = f" ({MODULE_OF_TYPE[t]})"
            elif t in BUILTIN_TYPES:
                about = f" (built into Redis >= {_text(BUILTIN_TYPES[t])})"
            out.append(
                f"the backup holds values of module type {t}{about}, which {name} does not "
                "have built in: pass --module PATH to load its module"
            )
        for c in commands:
            out.append(
                f"the AOF calls {c}, a module command {name} does not know: pass --module "
                "PATH to load its module"
            )
    return out


def choose_binary(result: CheckResult, modules: Sequence[Path] = ()) -> ServerBinary:
    """The redis-server to stage with: Debian's (the system one) if it can read the backup,
    else the oldest one here that can, else the newest (whose refusal then says why)."""
    binaries = find_binaries()
    if not binaries:
        raise ServerError("no redis-server found (install redis-server or pass --redis-server)")
    readable = [b for b in binaries if not refusals(result, b, modules)]
    for b in readable:
        if b.source == "system":
            return b
    return readable[0] if readable else binaries[-1]


# -- the drill -----------------------------------------------------------------------------


def stage(
    backup: Path,
    *,
    binary: ServerBinary | None = None,
    config_path: Path | None = None,
    modules: Sequence[Path] = (),
    now_ms: int | None = None,
    force: bool = False,
    checked: CheckResult | None = None,
    workdir: Path | None = None,
    load_timeout: float | None = None,
    save_rdb_to: Path | None = None,
    server_text: str | None = None,
    progress: ProgressFactory = no_progress,
) -> StageReport:
    """Run the restore drill on ``backup`` and report. Raises BackupIOError when there is
    nothing to read and ServerError when no redis-server can be found.

    ``checked`` is a check result to use instead of checking again (its inventory is what the
    server's keyspace must match); ``workdir`` where the scratch directory goes (default: the
    system temp dir); ``save_rdb_to`` where to copy an RDB the scratch server saves once
    verified (how an AOF backup becomes an RDB for a target with ``appendonly no``);
    ``server_text`` how refusals name the server (default "this redis-server is X").
    """
    report = StageReport(str(backup))
    try:
        result = _gate(report, backup, config_path, now_ms, force, checked, modules)
        binary = _preflight(report, result, binary, modules, workdir, server_text)
        _load_and_compare(
            report, result, binary, modules, workdir, load_timeout, save_rdb_to, progress
        )
    except _Stop:
        pass
    return report


def _stop(
    report: StageReport, step: Step, outcome: str, reason: str, reasons: Sequence[str] = ()
) -> _Stop:
    step.status = outcome if outcome in (REFUSED, MISMATCH) else FAILED
    step.detail = reasons[0] if reasons else reason
    if len(reasons) > 1:
        step.detail += f" (and {len(reasons) - 1} more)"
    report.outcome = outcome
    report.reason = reason
    report.reasons = list(reasons) or [reason]
    return _Stop()


def _gate(
    report: StageReport,
    backup: Path,
    config_path: Path | None,
    now_ms: int | None,
    force: bool,
    checked: CheckResult | None,
    modules: Sequence[Path] = (),
) -> CheckResult:
    with timed(report.steps, "gate") as step:
        # The scratch server loads ``modules``: an AOF's commands of theirs are accepted.
        result = checked or check_backup(
            backup,
            config_path=config_path,
            now_ms=now_ms,
            modules=tuple(os.fspath(m) for m in modules),
        )
        report.result = result
        report.backup = result.path
        report.notes.extend(result.notes)
        verdict = gate(result.problems, force, "staged anyway")
        if verdict.refusal:
            raise _stop(report, step, REFUSED, verdict.refusal)
        step.detail = verdict.detail
        if verdict.forced:
            report.notes.append(verdict.forced)
        return result


def _preflight(
    report: StageReport,
    result: CheckResult,
    binary: ServerBinary | None,
    modules: Sequence[Path],
    workdir: Path | None,
    server_text: str | None = None,
) -> ServerBinary:
    with timed(report.steps, "preflight") as step:
        chosen = binary is None
        if binary is None:
            binary = choose_binary(result, modules)
        report.binary = binary
        report.modules = [os.fspath(m) for m in modules]
        reasons = refusals(result, binary, modules, server_text)
        if chosen:
            what = f"redis-server {binary.version_text} ({binary.source}, {binary.path})"
            report.notes.append(
                f"{what} chosen: it can read this backup"
                if not reasons
                else f"no redis-server here can load this backup as it is; {what} tried"
            )
        if reasons:
            raise _stop(report, step, REFUSED, "; ".join(reasons), reasons)
        types, commands = needed_modules(result, binary.version)
        if types or commands:
            report.notes.append(
                "the backup needs "
                + ", ".join(map(printable, [*types, *commands]))
                + ": the server will say "
                "whether the --module files provide them"
            )
        need = _copy_size(result)
        where = workdir or Path(tempfile.gettempdir())
        free = shutil.disk_usage(where).free
        if need > free:
            raise _stop(
                report,
                step,
                REFUSED,
                f"not enough room in {where} for the scratch copy: needs {need} bytes, {free} free",
            )
        step.detail = f"redis-server {binary.version_text} can load it"
        return binary


def _copy_size(result: CheckResult) -> int:
    if result.aof is not None and result.aof.layout == "multi-part":
        return sum(_size(p) for p in _aof_dir_files(result))
    return _size(Path(result.path))


def _aof_dir_files(result: CheckResult) -> list[Path]:
    """The files of a multi-part AOF's directory, as a copy of it would take them (all of
    them: a damaged manifest, staged with --force, is then judged by the server)."""
    try:
        return sorted(p for p in Path(result.path).parent.iterdir() if p.is_file())
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def scratch_settings(result: CheckResult, binary: ServerBinary, notes: list[str]) -> dict[str, str]:
    """The config of a scratch server that loads this backup; why, said in ``notes``.
    (The drill's, and diff's when it loads an AOF to read its values.)"""
    settings: dict[str, str] = {}
    databases = needed_databases(result)
    if databases > DEFAULT_DATABASES:
        settings["databases"] = str(databases)
        notes.append(
            f"databases {databases}: the backup uses db {databases - 1} (the default is 16)"
        )
    if result.format == "rdb":
        settings.update(dbfilename="dump.rdb", appendonly="no")
        return settings
    assert result.aof is not None
    settings.update(
        {
            "appendonly": "yes",
            "appendfsync": "no",
            "auto-aof-rewrite-percentage": "0",
        }
    )
    if result.aof.layout == "multi-part":
        manifest = Path(result.path).name
        settings["appendfilename"] = manifest.removesuffix(".manifest")
        settings["appenddirname"] = "appendonlydir"
    else:
        settings["appendfilename"] = "appendonly.aof"
        if binary.version >= (7, 0):
            notes.append(
                f"a single-file AOF on Redis {binary.version_text}: the server upgrades it "
                "to a multi-part appendonlydir when it loads it (in the scratch copy)"
            )
    cut = [p for p in result.problems if p.code in ("truncated_tail", "unterminated_multi")]
    if cut:
        settings["aof-load-truncated"] = "yes"
        notes.append(
            "aof-load-truncated yes: the backup ends in a cut-off command or transaction, "
            "which the server drops (" + cut[0].message + ")"
        )
    else:
        settings["aof-load-truncated"] = "no"
        notes.append(
            "aof-load-truncated no: the AOF ends cleanly, so the drill allows no truncation"
        )
    return settings


def install_backup(result: CheckResult, directory: Path, settings: dict[str, str]) -> int:
    """Copy the backup into the scratch directory as the server will look for it."""
    src = Path(result.path)
    if result.format == "rdb":
        shutil.copyfile(src, directory / settings["dbfilename"])
        return _size(src)
    assert result.aof is not None
    if result.aof.layout != "multi-part":
        shutil.copyfile(src, directory / settings["appendfilename"])
        return _size(src)
    target = directory / settings["appenddirname"]
    target.mkdir()
    total = 0
    for path in _aof_dir_files(result):
        shutil.copyfile(path, target / path.name)
        total += _size(path)
    return total


def _load_and_compare(
    report: StageReport,
    result: CheckResult,
    binary: ServerBinary,
    modules: Sequence[Path],
    workdir: Path | None,
    load_timeout: float | None,
    save_rdb_to: Path | None = None,
    progress: ProgressFactory = no_progress,
) -> None:
    settings = scratch_settings(result, binary, report.notes)
    if modules:  # absolute: the server changes into its `dir` before it loads modules
        settings["loadmodule"] = "\n".join(os.fspath(Path(m).absolute()) for m in modules)
    report.settings = {k: v for k, v in settings.items() if k != "loadmodule"}
    directory = lifeline.scratch_dir("rbkit-stage-", workdir)
    server = _ScratchServer(binary, directory, free_port(), settings)
    report.port = server.port
    try:
        with timed(report.steps, "copy") as step:
            try:
                copied = install_backup(result, directory, settings)
            except OSError as e:
                raise _stop(report, step, FAILED, f"copying the backup: {e}") from None
            step.detail = f"{copied} bytes into {directory}"
        keys = report.keys
        with timed(report.steps, "key-names") as step:
            try:
                keys = keys or backup_keys(result)
                report.keys = keys
                step.detail = f"{sum(d.count for d in keys.databases.values())} keys"
            except (FormatError, OSError) as e:
                step.status = "skipped"
                step.detail = f"not read ({e}): compared by counts only"
        # Generous: Redis loads small keys at a few MB/s; a dead server is noticed at once.
        timeout = load_timeout or max(120.0, _copy_size(result) / (2 << 20))
        since_ms = int(time.time() * 1000)
        with timed(report.steps, "load") as step:
            try:
                with progress_of(progress, "loading into the scratch server") as bar:
                    server.start(timeout, bar)
            except ServerError as e:
                report.log = load_log(server.log_path)
                reason = report.log[-1] if report.log else str(e)
                raise _stop(report, step, FAILED, f"the server did not load it: {reason}") from None
            report.server_load_seconds = _logged_load_seconds(server.log_path)
            step.detail = f"redis-server {binary.version_text} on 127.0.0.1:{server.port}"
            if report.server_load_seconds is not None:
                step.detail += f", loaded in {report.server_load_seconds:.3f} s (its log)"
        with timed(report.steps, "read") as step:
            client = server.client(socket_timeout=60)
            try:
                with progress_of(progress, "reading the scratch server", KEYS) as bar:
                    live = read_expected(client, result, keys, since_ms, bar)
            except redis.RedisError as e:
                raise _stop(report, step, FAILED, f"reading the scratch server: {e}") from None
            finally:
                client.close()
            _expired_from_log(live, server.log_path)
            report.live = live
            step.detail = f"{live.keys} keys in {len(live.databases)} dbs"
        with timed(report.steps, "compare") as step:
            comparison = compare_expected(result, live, keys, since_ms, result.format == "rdb")
            report.comparison = comparison
            if not comparison.verified:
                first = comparison.mismatches[0].sentence
                more = len(comparison.mismatches) - 1
                reason = f"the loaded keyspace differs from the backup: {first}"
                if more:
                    reason += f" (and {more} more)"
                raise _stop(report, step, MISMATCH, reason)
            step.detail = "counts" + (" and key names" if comparison.digest_compared else "")
            step.detail += " match"
        if save_rdb_to is not None:
            with timed(report.steps, "save") as step:
                client = server.client(socket_timeout=None)
                try:
                    client.save()
                    shutil.copyfile(directory / "dump.rdb", save_rdb_to)
                except (redis.RedisError, OSError) as e:
                    raise _stop(report, step, FAILED, f"saving the loaded data: {e}") from None
                finally:
                    client.close()
                step.detail = f"SAVE, the RDB it wrote copied to {save_rdb_to}"
    finally:
        with timed(report.steps, "stop") as step:
            try:
                server.stop()
            except (OSError, subprocess.SubprocessError) as e:  # pragma: no cover
                step.status = FAILED
                step.detail = str(e)
            lifeline.remove_dir(directory)
            if step.status == "ok":
                step.detail = f"scratch server shut down (nosave), {directory} removed"


def read_expected(
    client: redis.Redis,
    result: CheckResult,
    keys: BackupKeys | None,
    since_ms: int,
    progress: Progress | None = None,
) -> LiveKeyspace:
    """Read a server that loaded ``result``'s backup at ``since_ms``: the types the backup
    holds, and the keys whose TTL may have run out since (watched by name)."""
    watch = keys.watch(since_ms, since_ms + WATCH_MS) if keys else None
    inv = result.inventory.databases if result.inventory else {}
    types = {t for stats in inv.values() for t, n in stats.by_type.items() if n}
    return read_live(client, watch=watch, types=types, progress=progress)


def compare_expected(
    result: CheckResult,
    live: LiveKeyspace,
    keys: BackupKeys | None,
    since_ms: int,
    loaded_rdb: bool,
) -> Comparison:
    """Compare what :func:`read_expected` read with the backup."""
    return compare(
        result,
        live,
        keys=keys,
        since_ms=since_ms if keys else None,
        watched_until_ms=since_ms + WATCH_MS,
        loaded_rdb=loaded_rdb,
    )


def load_log(path: Path, limit: int = 20) -> list[str]:
    """The server's log lines from "Server initialized" on (without the usual host warnings)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for i, line in enumerate(lines):
        if line.endswith(" Server initialized"):
            lines = lines[i:]
            break
    out = []
    for line in lines:
        m = _LOG_LINE.match(line)
        text = m.group("text") if m else line.strip()
        if not text or any(text.startswith(noise) for noise in _LOG_NOISE):
            continue
        out.append(text)
    return out[-limit:]


def _logged_load_seconds(path: Path) -> float | None:
    return _search_log(path, _LOAD_TIME, lambda m: float(m.group(1)))


def _expired_from_log(live: LiveKeyspace, path: Path) -> None:
    """Before 7.0 INFO has no rdb_last_load_keys_*; the load's log line has them."""
    if live.keys_expired is not None:
        return
    found = _search_log(path, _LOG_EXPIRED, lambda m: (int(m.group(1)), int(m.group(2))))
    if found is not None:
        live.keys_loaded, live.keys_expired = found
        live.sources["keys_loaded"] = live.sources["keys_expired"] = (
            "redis.log 'Done loading RDB' line"
        )


def _search_log(
    path: Path, pattern: re.Pattern[str], value: Callable[[re.Match[str]], T]
) -> T | None:
    """``value`` of the last log line matching ``pattern`` (None: no such line)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    matches = list(pattern.finditer(text))
    return value(matches[-1]) if matches else None
