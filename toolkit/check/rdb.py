"""``rbkit check`` of an RDB file: judge it and take its inventory.

Opens the file (the only IO here), maps it, runs the parser, and turns what the parser found
into a verdict: errors, warnings and the inventory. By default every value is checked as Redis
checks it when it loads it with ``sanitize-dump-payload yes``, and no key may be stored twice
in a db (toolkit/check/dupkeys.py); ``quick`` reads the framing only. On damage, what was read
before it is kept (``CheckResult.partial``). Rendering lives in render.py/report.py; AOF
backups in aof.py; which file a BACKUP argument means, in backup.py.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path

from parsers.cluster.slots import SlotCounts, declared_slots
from parsers.errors import FormatError, format_key
from parsers.rdb.constants import DEFAULT_DATABASES, MAX_TYPE_FOR_VERSION, OPCODE_SINCE, Opcode
from parsers.rdb.envelope import is_enveloped, unwrap
from parsers.rdb.versions import release_for
from parsers.rdb.walker import RdbWalker
from toolkit.check.dupkeys import Duplicates, KeyIndex, SpillError
from toolkit.check.functions import library_problems
from toolkit.check.inventory import Inventory, inventory_of_rdb, inventory_of_tally
from toolkit.check.problems import ERROR, WARNING, Problem
from toolkit.check.result import CheckResult, Partial
from toolkit.errors import BackupIOError
from toolkit.mapped import mapped, release_behind

ProgressFn = Callable[[int, int], None]

__all__ = ["BackupIOError", "CheckResult", "check_file", "check_rdb"]


def check_file(
    path: str | os.PathLike[str],
    *,
    top: int = 10,
    quick: bool = False,
    now_ms: int | None = None,
    progress: ProgressFn | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    slots: SlotCounts | None = None,
) -> CheckResult:
    """Check the RDB file at ``path``. Raises BackupIOError when it cannot be read.

    ``spill_dir``: where key hashes go past toolkit.check.dupkeys.SPILL_AT keys (default: the
    system's temporary directory, $TMPDIR).
    """
    path = Path(path)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        with mapped(path) as mm:
            if mm is None:
                result = CheckResult(str(path), "rdb", 0, now_ms, quick)
                result.problems.append(
                    Problem(ERROR, "truncated", 0, "empty file: expected the RDB header")
                )
                return result
            return check_rdb(
                mm,
                path=str(path),
                top=top,
                quick=quick,
                now_ms=now_ms,
                progress=progress,
                spill_dir=spill_dir,
                slots=slots,
            )
    except IsADirectoryError:
        raise BackupIOError(f"{path}: is a directory, expected an RDB file") from None
    except OSError as e:
        raise BackupIOError(f"{path}: {e.strerror or e}") from None


def check_rdb(
    buf: mmap.mmap | bytes,
    *,
    path: str = "<buffer>",
    top: int = 10,
    quick: bool = False,
    now_ms: int | None = None,
    progress: ProgressFn | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    slots: SlotCounts | None = None,
) -> CheckResult:
    """Check an RDB held in ``buf``: the verdict, its problems and the inventory; with
    ``slots`` (not ``quick``), its keys are also counted per cluster hash slot."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    size = len(buf)
    result = CheckResult(path, "rdb", size, now_ms, quick)
    envelope = None
    if is_enveloped(buf):  # Valkey 9.2's rdbcompression lz4: read through it
        try:
            envelope, buf = unwrap(buf)
        except FormatError as e:
            result.problems.append(Problem.from_error(e.located()))
            return result
        result.notes.append(
            f"a VKCS envelope (Valkey rdbcompression {envelope.codec}) holds this RDB: "
            f"{size:,} bytes, {envelope.size:,} decompressed; offsets below are in the "
            "decompressed RDB"
            + ("; the LZ4 frame's content checksum matched" if envelope.frame_checksum else "")
        )
    try:
        walker = RdbWalker(buf, deep=not quick, on_progress=_progress_hook(buf, progress))
    except FormatError as e:
        result.problems.append(Problem.from_error(e.located()))
        return result
    result.magic, result.rdb_version = walker.magic, walker.version
    result.min_release = release_for(walker.magic, walker.version)
    keys = None if quick else KeyIndex(walker.record_key, spill_dir=spill_dir)
    try:
        result.inventory = inventory_of_rdb(walker, now_ms, top, keys, None if quick else slots)
        if keys is not None:
            result.problems.extend(duplicate_findings(keys.finish()))
    except FormatError as e:
        result.problems.append(Problem.from_error(e))
        result.partial = _partial(walker, e.offset)
    except SpillError as e:
        raise BackupIOError(f"{path}: {e}") from None
    finally:
        if keys is not None:
            keys.close()
    result.aux = {
        a.name.decode("utf-8", "replace"): a.value.decode("utf-8", "replace") for a in walker.aux
    }
    result.checksum = walker.checksum
    result.slot_info = declared_slots(walker.slot_info, walker.aux)
    findings = rdb_findings(walker, result)
    if envelope is not None and envelope.frame_checksum:
        # The frame's checksum, verified, stands for a CRC-64 written as zero.
        findings = [p for p in findings if p.code != "checksum_disabled"]
    result.problems.extend(findings)
    return result


def _partial(walker: RdbWalker, damage_at: int | None) -> Partial | None:
    """What the walk had read when it met damage (like redis-check-rdb's "N keys read")."""
    if walker.partial is None:
        return None
    last = walker.partial.last_key
    last_key = None
    if last is not None:
        db, start = last
        try:
            last_key = (db, bytes(walker.key_at(start + 1)), start)
        except (FormatError, IndexError):
            last_key = None
    tally = walker.partial.tally
    try:
        inventory = inventory_of_tally(walker, tally)
    except (FormatError, IndexError):  # a biggest key's name is damaged (--quick skips names)
        tally.by_bytes.clear()
        tally.by_elements.clear()
        inventory = inventory_of_tally(walker, tally)
    return Partial(inventory, last_key, damage_at)


def _progress_hook(buf: mmap.mmap | bytes, progress: ProgressFn | None) -> Callable[[int], None]:
    """Release mapped pages behind the walk and report progress."""
    released = 0
    total = len(buf)

    def hook(offset: int) -> None:
        nonlocal released
        if isinstance(buf, mmap.mmap):
            released = release_behind(buf, offset, released)
        if progress is not None:
            progress(offset, total)

    return hook


def duplicate_findings(found: Duplicates) -> list[Problem]:
    """The problem of a key stored twice in a db, or of one whose other copies had expired."""
    first = found.first
    if first is not None:
        more = found.repeats - 1
        return [
            Problem(
                ERROR,
                "duplicate_key",
                first.offset,
                f"key {format_key(first.key)} is stored twice in db {first.db} (at offsets "
                f"{first.first_offset} and {first.offset}): Redis refuses the file "
                '("RDB has duplicated key")'
                + (f"; {more} more key record(s) repeat a key" if more else ""),
            )
        ]
    seen = found.expired
    if seen is None:
        return []
    return [
        Problem(
            WARNING,
            "expired_duplicate",
            seen.offset,
            f"key {format_key(seen.key)} is stored more than once in db {seen.db} (at offsets "
            f"{seen.first_offset} and {seen.offset}): a master loads the file only because it "
            "skips the copies whose expiry has passed; a replica keeps them, and refuses it",
        )
    ]


def rdb_findings(walker: RdbWalker, result: CheckResult) -> list[Problem]:
    """Warnings and checksum errors that follow from a walk that reached its end (or not)."""
    out: list[Problem] = []
    checksum = walker.checksum
    if checksum is not None:
        if checksum.status == "mismatch":
            out.append(
                Problem(
                    ERROR,
                    "checksum_mismatch",
                    checksum.offset,
                    f"checksum mismatch: stored {checksum.stored:016x}, "
                    f"computed {checksum.computed:016x}",
                )
            )
        elif checksum.status == "disabled":
            out.append(
                Problem(
                    WARNING,
                    "checksum_disabled",
                    checksum.offset,
                    "checksum is zero (saved with rdbchecksum no): content cannot be verified",
                )
            )
    for job in walker.slot_imports:
        slots = ", ".join(f"{a}-{b}" for a, b in job.ranges) or "none"
        out.append(
            Problem(
                ERROR,
                "cluster_only",
                job.offset,
                f"a Valkey slot-import job (slots {slots}): a valkey-server not in cluster "
                "mode crashes while loading it (9.1.2: an assertion in kvstore.c, or a "
                "segmentation fault); load it into a cluster-enabled node",
            )
        )
    if walker.trailing_bytes:
        at = len(walker.buf) - walker.trailing_bytes
        out.append(
            Problem(
                WARNING,
                "trailing_bytes",
                at,
                f"{walker.trailing_bytes} bytes after the end of the RDB at offset {at}",
            )
        )
    seen: set[int] = set()
    for db in walker.dbs:
        if db in seen and result.quick:  # the full check looks for the keys stored twice
            out.append(
                Problem(
                    WARNING,
                    "repeated_db",
                    None,
                    f"db {db} is selected more than once: keys may repeat, and Redis refuses "
                    "duplicated keys when loading",
                )
            )
        seen.add(db)
    big = [db for db in sorted(seen) if db >= DEFAULT_DATABASES]
    if big:
        out.append(
            Problem(
                WARNING,
                "databases",
                None,
                f"db {big[-1]} needs a server with 'databases {big[-1] + 1}' or more "
                f"(the default is {DEFAULT_DATABASES})",
            )
        )
    inv = result.inventory
    if inv is not None:
        for hint in walker.resize_hints:
            stats = inv.databases.get(hint.db)
            found = stats.keys if stats else 0
            if hint.keys != found:
                out.append(
                    Problem(
                        WARNING,
                        "resize_hint",
                        hint.offset,
                        f"db {hint.db}: the resize hint says {hint.keys} keys, the file holds "
                        f"{found}",
                    )
                )
        if inv.module_values or walker.module_aux:
            aux = len(walker.module_aux)
            out.append(
                Problem(
                    WARNING,
                    "module_values_unchecked",
                    None,
                    f"{inv.module_values} module value(s)"
                    + (f" and {aux} module aux record(s)" if aux else "")
                    + ": their framing is checked, their content only the module can judge",
                )
            )
        empty = sum(s.empty for s in inv.databases.values())
        if empty:
            out.append(
                Problem(
                    WARNING,
                    "empty_keys",
                    None,
                    f"{empty} empty collection(s): Redis skips them when loading",
                )
            )
    if walker.magic == "REDIS":
        out.extend(_anachronisms(walker, inv))
    aux = {
        a.name.decode("utf-8", "replace"): a.value.decode("utf-8", "replace") for a in walker.aux
    }
    valkey = walker.magic == "VALKEY" or "valkey-ver" in aux
    out.extend(library_problems(walker.functions, valkey=valkey, aux=aux))
    if any(f.pre_ga for f in walker.functions):
        out.append(
            Problem(
                WARNING,
                "function_pre_ga",
                None,
                "functions in the Redis 7.0 release-candidate format: Redis 7.0 loads them, "
                "7.2 and later refuse to",
            )
        )
    return out


def _anachronisms(walker: RdbWalker, inv: Inventory | None) -> list[Problem]:
    """Types and opcodes newer than the header's version: Redis reads them all the same, but
    the version is probably wrong, and a server that only reads that version may refuse them."""
    version = walker.version
    out = []
    last_type = MAX_TYPE_FOR_VERSION.get(version, 255)
    newer = sorted(t for t in (inv.type_ids if inv else ()) if t > last_type)
    if newer:
        out.append(
            Problem(
                WARNING,
                "type_too_new",
                None,
                f"value type(s) {', '.join(map(str, newer))} came after RDB {version}, "
                "the version in the header",
            )
        )
    ops = sorted(op for op in walker.opcodes_seen if OPCODE_SINCE.get(op, 0) > version)
    if ops:
        names = ", ".join(f"{Opcode(op).name} (RDB {OPCODE_SINCE[op]})" for op in ops)
        out.append(
            Problem(
                WARNING,
                "opcode_too_new",
                None,
                f"opcodes newer than RDB {version}, the version in the header: {names}",
            )
        )
    return out
