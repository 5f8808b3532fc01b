"""``rbkit check`` of an AOF: a single file (commands, maybe after an RDB preamble) or a Redis 7+
multi-part AOF (manifest, base, incr files).

Each file is read and judged on its own (its RDB part checked like any RDB, its commands
framed as Redis frames them), then the whole is judged together: the manifest, the order of
the files, a cut-off tail (forgiven by ``aof-load-truncated yes`` only in the last file), and
the keyspace the commands rebuild, replayed by the keyspace model into the same inventory an
RDB check gives.
"""

from __future__ import annotations

import mmap
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from parsers.aof.command_table import module_providing
from parsers.aof.manifest import Manifest, parse_manifest
from parsers.aof.resp import Annotation, Command, TruncatedCommand, read_commands
from parsers.errors import FormatError, format_key
from parsers.printable import printable
from parsers.rdb.columns import BATCH_ROWS, NO_EXPIRY, KeyColumns, key_columns
from parsers.rdb.constants import MAGICS
from parsers.rdb.decode import decode_value
from parsers.rdb.versions import release_for
from parsers.rdb.walker import RdbWalker
from toolkit.check.commands import SUB_MAX, CommandLedger, judge, writer_of
from toolkit.check.keyspace import Keyspace
from toolkit.check.keyspace.compact import CompactStore, available
from toolkit.check.keyspace.values import from_decoded
from toolkit.check.problems import ERROR, WARNING, Problem
from toolkit.check.rdb import ProgressFn, rdb_findings
from toolkit.check.result import AofDetails, AofFile, AofReplay, CheckResult
from toolkit.errors import BackupIOError
from toolkit.mapped import mapped, release_behind

# Keys of an RDB part per batch of the C walk (tests make it small to cross batch ends).
RDB_BATCH_ROWS = BATCH_ROWS

_SCRIPTS = frozenset((b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"))
# Release mapped pages behind the reader every this many commands.
_RELEASE_EVERY = 1 << 16
# Tests and benchmarks set this to False to check with the Python model alone (as does the
# environment variable RBKIT_AOF_COMPACT=0): the results are the same.
USE_COMPACT = True


def check_aof(
    path: Path,
    *,
    top: int = 10,
    now_ms: int | None = None,
    progress: ProgressFn | None = None,
    modules: list[str] | tuple[str, ...] = (),
) -> CheckResult:
    """Check a single-file AOF (Redis < 7 layout, with or without an RDB preamble).

    ``modules`` names the modules the loading server has (``--module NAME|PATH``).
    """
    run = _Run(path, "single", top, now_ms, progress, modules)
    run.plan([path])
    run.read_file(path, AofFile(path.name, "single", _size(path)), last=True)
    return run.finish()


def check_multipart(
    manifest_path: Path,
    *,
    top: int = 10,
    now_ms: int | None = None,
    progress: ProgressFn | None = None,
    modules: list[str] | tuple[str, ...] = (),
) -> CheckResult:
    """Check a multi-part AOF from its manifest: base, then incr files in order."""
    run = _Run(manifest_path, "multi-part", top, now_ms, progress, modules)
    folder = manifest_path.parent
    try:
        text = manifest_path.read_bytes()
    except OSError as e:
        raise BackupIOError(f"{manifest_path}: {e.strerror or e}") from None
    try:
        manifest = parse_manifest(text)
    except FormatError as e:
        e.source = manifest_path.name
        run.result.problems.append(Problem(ERROR, "bad_manifest", e.offset, str(e)))
        return run.finish()
    assert run.result.aof is not None
    run.result.aof.manifest = manifest_path.name
    for warning in manifest.warnings:
        run.result.problems.append(
            Problem(WARNING, "manifest", None, f"{manifest_path.name}: {warning}")
        )
    files = _manifest_files(run, folder, manifest)
    if files is None:
        return run.finish()
    run.plan([p for p, _ in files])
    for i, (entry_path, info) in enumerate(files):
        run.read_file(entry_path, info, last=i == len(files) - 1)
    for entry in manifest.history:
        run.result.aof.files.append(
            AofFile(
                entry.name,
                "history",
                _size(folder / entry.name),
                entry.seq,
                checked=False,
                start_offset=entry.start_offset,
                end_offset=entry.end_offset,
            )
        )
    if manifest.history:
        names = ", ".join(h.name for h in manifest.history)
        run.result.notes.append(f"history files ({names}) are left over from rewrites: not read")
    return run.finish()


def _manifest_files(
    run: _Run, folder: Path, manifest: Manifest
) -> list[tuple[Path, AofFile]] | None:
    """The files to read in order, or None (with errors noted) when one is missing."""
    out = []
    entries = ([manifest.base] if manifest.base else []) + list(manifest.incrs)
    missing = False
    for entry in entries:
        path = folder / entry.name
        role = "base" if entry.type == "b" else "incr"
        if not path.is_file():
            missing = True
            run.result.problems.append(
                Problem(
                    ERROR,
                    "missing_file",
                    entry.offset,
                    f"{run.result.path}: line {entry.line} names {entry.name}, which is not "
                    f"in {folder}",
                )
            )
            continue
        info = AofFile(entry.name, role, _size(path), entry.seq)
        info.start_offset, info.end_offset = entry.start_offset, entry.end_offset
        out.append((path, info))
    if not entries:
        run.result.notes.append("the manifest lists no base and no incr file: an empty dataset")
    return None if missing else out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Run:
    """The state of one AOF check: the keyspace model, statistics, problems."""

    def __init__(
        self,
        path: Path,
        layout: str,
        top: int,
        now_ms: int | None,
        progress: ProgressFn | None,
        modules: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self.top = top
        self.progress = progress
        self.keyspace = Keyspace()
        self.result = CheckResult(str(path), "aof", _size(path), self.now_ms)
        self.result.aof = AofDetails(layout)
        self.db = 0
        self.ts: int | None = None
        self.touched: set[tuple[int, bytes]] = set()
        self.ledger = CommandLedger()
        self.modules = list(modules)
        # The compact store (see toolkit/check/keyspace/compact.py), from plan() on.
        self.compact: CompactStore | None = None
        self.files: list[Path] = []  # plan(): the files to read, in order
        self.marked = False

    def plan(self, files: list[Path]) -> None:
        """Name the files about to be read, in order: the compact store takes part when no
        file but the first starts with an RDB part (whose keys stay the Python model's)."""
        self.files = list(files)
        if USE_COMPACT and available() and not any(map(_starts_rdb, files[1:])):
            self.compact = self.keyspace.compact = CompactStore()

    def _drop_compact(self) -> None:
        """Check with the Python model alone (only before the store has run a command)."""
        self.compact = self.keyspace.compact = None

    def _mark(self, mm: mmap.mmap, path: Path, start: int) -> None:
        """Before the first command runs: find the Python model's keys in this file's
        commands from ``start`` and in every later file's."""
        compact = self.compact
        assert compact is not None
        self.marked = True
        compact.mark(mm, start)
        later = self.files[self.files.index(path) + 1 :] if path in self.files else None
        if later is None:
            self._drop_compact()
            return
        for other in later:
            try:
                with mapped(other) as other_mm:
                    if other_mm is not None:
                        compact.mark(other_mm, 0)
            except OSError:  # reported when the file is read
                self._drop_compact()
                return
        if compact.scripts:
            self._drop_compact()

    # -- one file --------------------------------------------------------------------------

    def read_file(self, path: Path, info: AofFile, *, last: bool) -> None:
        assert self.result.aof is not None
        self.result.aof.files.append(info)
        self.ledger.start_file(path.name)
        self.db = 0  # each file is loaded by a fresh client, in db 0
        try:
            with mapped(path) as mm:
                if mm is not None:
                    self._read_mapped(mm, path, info, last=last)
        except OSError as e:
            raise BackupIOError(f"{path}: {e.strerror or e}") from None

    def _read_mapped(self, mm: mmap.mmap, path: Path, info: AofFile, *, last: bool) -> None:
        start = 0
        if mm[:6].startswith(MAGICS):
            start = self._read_rdb_part(mm, path, info)
            if start is None:
                return
            info.format = "rdb" if start >= len(mm) else "rdb+resp"
            if start >= len(mm):
                return
        self._read_commands(mm, path, info, start, last=last)

    def _before_rdb_part(self, mm: mmap.mmap, path: Path) -> CompactStore | None:
        """Before the first RDB part is read: mark every command of this file and the later
        ones (noting the keys of C commands too), so that the RDB keys no command names, and
        the strings and lists only C commands name, go to the compact store undecoded. None
        when the store takes no RDB keys (they are then all the Python model's)."""
        compact = self.compact
        if compact is None or self.marked:
            return None
        try:
            walker = RdbWalker(mm)  # a quick framing-only walk, to find where commands start
            walker.tally(self.now_ms, 0)
        except FormatError:  # the deep walk below reports it
            return None
        compact.collect_named()
        self._mark(mm, path, len(mm) - walker.trailing_bytes)
        return self.compact

    def _read_rdb_part(self, mm: mmap.mmap, path: Path, info: AofFile) -> int | None:
        """Check the RDB at the start of the file and seed the model with its keys.

        Returns where the commands after it start, or None when the RDB part is damaged.
        """
        result = self.result
        try:
            walker = RdbWalker(mm, deep=True)  # every value as Redis loads it, as an RDB's
            if result.rdb_version is None:
                result.magic, result.rdb_version = walker.magic, walker.version
                result.min_release = release_for(walker.magic, walker.version)
            compact = self._before_rdb_part(mm, path)
            if compact is not None:
                repeats, repeat = self._load_rdb_batches(mm, walker, compact)
            else:
                repeats, repeat = self._load_rdb_keys(mm, walker)
        except FormatError as e:
            e.source = path.name
            result.problems.append(Problem.from_error(e))
            return None
        if repeat is not None:
            db, key, at = repeat
            more = f"; {repeats - 1} more key record(s) repeat a key" if repeats > 1 else ""
            result.problems.append(
                Problem(
                    ERROR,
                    "duplicate_key",
                    at,
                    f"{path.name}: key {format_key(key)} is stored twice in db {db} (again at "
                    f'offset {at}): Redis refuses the file ("RDB has duplicated key"){more}',
                )
            )
        for function in walker.functions:
            self.keyspace.load_function(function.library)
        result.checksum = result.checksum or walker.checksum
        result.aux = result.aux or {
            a.name.decode("utf-8", "replace"): a.value.decode("utf-8", "replace")
            for a in walker.aux
        }
        for problem in rdb_findings(walker, result):
            if problem.code in ("trailing_bytes", "resize_hint"):
                continue  # the commands after the preamble; hints count keys, not commands
            result.problems.append(
                Problem(
                    problem.severity,
                    problem.code,
                    problem.offset,
                    f"{path.name}: {problem.message}",
                )
            )
        return len(mm) - walker.trailing_bytes

    def _load_rdb_keys(
        self, mm: mmap.mmap, walker: RdbWalker
    ) -> tuple[int, tuple[int, bytes, int] | None]:
        """Every key of the RDB part into the Python model, decoded; returns how many records
        repeat a key, and the first of them (db, key, offset)."""
        repeat: tuple[int, bytes, int] | None = None
        repeats = 0
        load = self.keyspace.load_key
        for db, t, key_offset, value_offset, _end, _n, expire in walker.walk():
            key = walker.key_at(key_offset)
            value = decode_value(mm, t, value_offset, magic=walker.magic)
            fresh = load(db, key, value, expire)
            if self.compact is not None:
                self.compact.add_python_key(bytes(key))
            if not fresh:
                repeats += 1
                repeat = repeat or (db, bytes(key), key_offset - 1)
        return repeats, repeat

    def _load_rdb_batches(
        self, mm: mmap.mmap, walker: RdbWalker, compact: CompactStore
    ) -> tuple[int, tuple[int, bytes, int] | None]:
        """The RDB part's keys from the C walk's batches: runs of keys the store takes
        undecoded go in by :meth:`CompactStore.load_rows`; a key it does not take is decoded
        into the Python model as :meth:`_load_rdb_keys` does. Returns the same."""
        repeat: tuple[int, bytes, int] | None = None
        repeats = 0
        load = self.keyspace.load_key
        for batch in key_columns(walker, RDB_BATCH_ROWS):
            dbs, types = batch.column("db"), batch.column("type_id")
            offsets, expires = batch.column("value_offset"), batch.column("expire_ms")
            elements = batch.column("elements")
            row = 0
            while row < batch.rows:
                row, more, first = compact.load_rows(mm, batch, row)
                if more:
                    repeats += more
                    if repeat is None:
                        repeat = _repeat_at(batch, first)
                if row >= batch.rows:
                    break
                db, t, key, value_at = dbs[row], types[row], batch.key(row), offsets[row]
                expire = None if expires[row] == NO_EXPIRY else expires[row]
                got = compact.load_rdb_key(db, key, t, mm, value_at, elements[row], expire)
                if got >= 2:
                    value = decode_value(mm, t, value_at, magic=walker.magic)
                    if got == 4:
                        got = 2 if from_decoded(value) is None else compact.give_rdb_key(db, key)
                    fresh = load(db, key, value, expire)
                    got = 0 if fresh and got == 2 else 1
                if got:
                    repeats += 1
                    repeat = repeat or _repeat_at(batch, row)
                row += 1
        return repeats, repeat

    def _read_commands(
        self, mm: mmap.mmap, path: Path, info: AofFile, start: int, *, last: bool
    ) -> None:
        if self.compact is not None and not self.marked:
            self._mark(mm, path, start)
        keyspace = self.keyspace
        state = _FileState(len(self.ledger.files) - 1, start)
        try:
            if self.compact is None:
                for item in read_commands(mm, start):
                    self._apply(item, state, mm)
            else:
                self._read_shared(mm, start, state)
        except TruncatedCommand as e:
            self._truncated(e, path, last=last)
        except FormatError as e:
            e.source = path.name
            problem = Problem.from_error(e)
            if last:
                good = state.before_multi if keyspace.in_multi else state.valid_up_to
                note = corrupt_tail_note(len(mm) - good, good)
                problem = Problem(
                    problem.severity, problem.code, problem.offset, problem.message + note
                )
            self.result.problems.append(problem)
        info.commands = state.count
        if keyspace.in_multi:
            keyspace.execute((b"DISCARD",))
            self._unterminated_multi(path, last=last)

    def _apply(self, item: Command | Annotation, state: _FileState, mm: mmap.mmap) -> None:
        """One item by the Python model: the ledger, the counts, MULTI and SELECT."""
        aof = self.result.aof
        assert aof is not None
        if isinstance(item, Annotation):
            ts = item.timestamp
            if ts is not None:
                self.ts = ts * 1000
                aof.first_ts = ts if aof.first_ts is None else aof.first_ts
                aof.last_ts = ts
            return
        args = item.args
        upper = args[0].upper()
        argc = len(args)
        ledger = self.ledger
        sub = args[1][:SUB_MAX].upper() if argc > 1 and upper in ledger.containers else None
        shape = (upper, sub, argc)
        seen = ledger.shapes.get(shape)
        if seen is None:
            ledger.shapes[shape] = [1, state.file_index, item.offset]
        else:
            seen[0] += 1
        aof.commands_by_db[self.db] += 1
        if upper == b"MULTI":
            state.before_multi = state.valid_up_to
        state.valid_up_to = item.end
        if upper == b"SELECT" and argc == 2 and args[1].isdigit():
            self.db = int(args[1])
        keyspace = self.keyspace
        keyspace.execute(args, self.ts)
        unknown = keyspace.unknown
        if unknown and upper[:SUB_MAX].decode("latin-1") in unknown:
            self.touched.update((self.db, key) for key in keys_named(args))
        state.count += 1
        if state.count % _RELEASE_EVERY == 0:
            self._release(mm, item.end, state)

    def _release(self, mm: mmap.mmap, offset: int, state: _FileState) -> None:
        state.released = release_behind(mm, offset, state.released)
        if self.progress is not None:
            self.progress(offset, len(mm))

    def _read_shared(self, mm: mmap.mmap, start: int, state: _FileState) -> None:
        """Read one file's commands, the compact store applying those it can (runs of
        them, in C) and the Python model the others, in file order."""
        compact = self.compact
        assert compact is not None and self.result.aof is not None
        keyspace = self.keyspace
        by_db = self.result.aof.commands_by_db
        shapes = self.ledger.shapes
        end = len(mm)
        pos = start
        while pos < end:
            pos, n, runs, error, python_items = compact.run(
                mm, pos, _RELEASE_EVERY, keyspace.db, keyspace.in_multi
            )
            if n:
                for name, argc, count, first in runs:
                    seen = shapes.get((name, None, argc))
                    if seen is None:
                        shapes[(name, None, argc)] = [count, state.file_index, first]
                    else:
                        seen[0] += count
                by_db[self.db] += n
                keyspace.commands += n
                state.valid_up_to = pos
                before = state.count
                state.count += n
                if state.count // _RELEASE_EVERY != before // _RELEASE_EVERY:
                    self._release(mm, pos, state)
                if error is not None:
                    keyspace.errors[f"{error.decode('latin-1')}: {_WRONGTYPE}"] += 1
            elif not python_items and pos < end:
                python_items = 1  # never stall: the Python reader takes the next item
            if python_items:
                for item in islice(read_commands(mm, pos, python_items), python_items):
                    self._apply(item, state, mm)
                    pos = item.end

    def _truncated(self, e: TruncatedCommand, path: Path, *, last: bool) -> None:
        what = f"a {e.name.decode('latin-1').upper()} command" if e.name else "a command"
        if last:
            message = (
                f"{path.name}: the last {e.missing_hint} bytes ({what} cut off at offset "
                f"{e.start}) would be dropped by a server with aof-load-truncated yes; "
                "with aof-load-truncated no it refuses to start"
            )
            self.result.problems.append(Problem(WARNING, "truncated_tail", e.start, message))
        else:
            message = (
                f"{path.name}: {what} is cut off at offset {e.start}, and this is not the last "
                "file: Redis refuses to load it whatever aof-load-truncated says"
            )
            self.result.problems.append(Problem(ERROR, "truncated", e.start, message))

    def _unterminated_multi(self, path: Path, *, last: bool) -> None:
        if last:
            message = (
                f"{path.name}: ends inside MULTI (no EXEC): Redis drops that transaction only "
                "with aof-load-truncated yes, and refuses to start with no"
            )
            self.result.problems.append(Problem(WARNING, "unterminated_multi", None, message))
        else:
            message = (
                f"{path.name}: ends inside MULTI (no EXEC) and is not the last file: "
                "Redis refuses to load it"
            )
            self.result.problems.append(Problem(ERROR, "unterminated_multi", None, message))

    # -- the whole -------------------------------------------------------------------------

    def finish(self) -> CheckResult:
        result = self.result
        aof = result.aof
        assert aof is not None
        ks = self.keyspace
        aof.commands = self.ledger.names()
        judged = judge(self.ledger, writer_of(result.aux), self.modules)
        result.problems.extend(judged.problems)
        aof.command_table = judged.table.label
        aof.command_table_why = judged.why
        aof.modules = self.modules
        # Commands the server refuses are errors above, not reasons to call the inventory
        # approximate; arity errors are not also "failing commands".
        aof.unknown_commands = ks.unknown
        unmodelled = [(n, c) for n, c in ks.unknown.most_common() if n not in judged.refused]
        aof.approximate = ks.approximate_without(judged.refused)
        result.inventory = ks.inventory(self.now_ms, self.top)
        result.replay = AofReplay(ks, self.touched)
        errors = [
            (e, n)
            for e, n in ks.errors.most_common()
            if e.partition(":")[0] not in judged.arity
            or not e.endswith(": wrong number of arguments")
        ]
        if errors:
            failing = "; ".join(f"{printable(e)} ({n}x)" for e, n in errors[:5])
            result.problems.append(
                Problem(
                    WARNING,
                    "failing_commands",
                    None,
                    f"{sum(n for _, n in errors)} command(s) fail when Redis loads "
                    f"them (an error reply, no effect): {failing}",
                )
            )
        if aof.approximate:
            reasons = [f"{_unmodelled(name, judged.assumed)} ({n}x)" for name, n in unmodelled]
            reasons += [f"{why} ({n}x)" for why, n in ks.approximations.most_common()]
            result.problems.append(
                Problem(
                    WARNING,
                    "approximate",
                    None,
                    "the inventory is approximate: " + "; ".join(reasons[:8]),
                )
            )
        return result


_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@dataclass
class _FileState:
    """Where the reading of one file's commands is."""

    file_index: int  # in the ledger
    valid_up_to: int  # where the last whole command ends (aof.c's valid_up_to)
    before_multi: int = 0  # and where it ended before an open MULTI
    count: int = 0
    released: int = 0  # mapped pages are released up to here

    def __post_init__(self) -> None:
        self.before_multi = self.valid_up_to


def _repeat_at(batch: KeyColumns, row: int) -> tuple[int, bytes, int]:
    """A repeated key record of a batch as (db, key, offset of its type byte)."""
    return batch.column("db")[row], batch.key(row), batch.column("key_offset")[row] - 1


def _starts_rdb(path: Path) -> bool:
    """Whether a file starts with an RDB magic (an unreadable one: False, reported later)."""
    try:
        with path.open("rb") as f:
            return f.read(6).startswith(MAGICS)
    except OSError:
        return False


def corrupt_tail_note(tail: int, good: int) -> str:
    """What Redis 8.4's ``aof-load-corrupt-tail-max-size`` would forgive of damage in the last
    file: aof.c truncates the file at the end of the last whole command (before an open MULTI)
    and loads it when the bytes from there to the end are fewer than the setting (0, the
    default: never)."""
    return (
        f"; a Redis 8.4+ server with aof-load-corrupt-tail-max-size above {tail} would cut "
        f"the last {tail} bytes (from offset {good}, the end of the last whole command) and "
        "load the rest; with the default 0 it refuses to start"
    )


def _unmodelled(name: str, assumed: dict[str, str]) -> str:
    """Why a command the model does not apply makes the inventory approximate."""
    shown = printable(name.encode("latin-1"))
    if name in assumed:
        return f"{shown}, assumed a command of the module {printable(assumed[name])}"
    provider = module_providing(name.encode("latin-1"))
    if provider is not None:
        return f"module command {shown} ({provider[0].name})"
    return f"command {shown} not modelled"


def keys_named(args: tuple[bytes, ...]) -> list[bytes]:
    """The keys a command the model does not apply names (scripts: their KEYS; else the
    first argument)."""
    if args[0].upper() in _SCRIPTS:
        if len(args) > 2 and args[2].isdigit():
            return list(args[3 : 3 + int(args[2])])
        return []
    return [args[1]] if len(args) > 1 else []
