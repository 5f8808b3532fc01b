"""Conformance: rbkit's verdict on every RDB of the public corpus against what Redis said.

Usage: ``tests/conformance.py CORPUS_DIR`` (the folder holding MANIFEST.tsv and README.md).

For each distinct RDB content (by sha256) of MANIFEST.tsv this runs ``check_file`` and
compares it with the manifest's Redis 7.0 results; files 7.0 refused for their version are
loaded into a throwaway Redis 8.2 server when one is installed. Prints a table and totals.
Exit status: 0 when rbkit agrees wherever a server could judge, 1 on any disagreement,
2 when the corpus cannot be read.
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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from toolkit.check import CheckResult, check_file
from toolkit.problems import ERROR
from toolkit.servers import RedisServer, ServerBinary, ServerError, find_binary, free_port

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


def read_manifest(corpus: Path) -> tuple[list[Entry], list[str]]:
    """Distinct RDB contents in manifest order, and the AOF rows' paths."""
    entries: dict[str, Entry] = {}
    aofs: list[str] = []
    with open(corpus / "MANIFEST.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["kind"] in ("aof", "aof-manifest"):
                aofs.append(row["path"])
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


def load_in(binary: ServerBinary, path: Path) -> Said:
    """Load ``path`` in a throwaway server of ``binary``: its keyspace or its refusal."""
    server_name = f"{binary.version[0]}.{binary.version[1]}"
    for _attempt in range(3):
        with tempfile.TemporaryDirectory(prefix="rbkit-conformance-") as tmp:
            directory = Path(tmp)
            shutil.copyfile(path, directory / "dump.rdb")
            server = RedisServer(binary, directory, free_port(), {"dbfilename": "dump.rdb"})
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
    deep = " (--deep)" if result.deep else ""
    if not result.valid:
        return f"invalid{deep}: {first_error(result)}"
    dbs = result.inventory.databases if result.inventory else {}
    if not dbs:
        return f"valid{deep}, no keys"
    parts = []
    for db, s in dbs.items():
        extra = [f"{n} {what}" for n, what in ((s.expired_at_check, "expired"), (s.empty, "empty"))]
        extra = [x for x in extra if not x.startswith("0 ")]
        parts.append(f"db{db}={s.keys}" + (f" ({', '.join(extra)})" if extra else ""))
    return f"valid{deep}, " + ", ".join(parts)


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
        if any(p.code == "repeated_db" for p in result.problems):
            return "yes", why
        return "no", [*why, "rbkit has no repeated_db warning"]
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
        return "no", [*why, f"rbkit: {first_error(result, message=True)}"]
    if said.kind == "corrupt":
        why.append(f"Redis: {said.detail}")
        if not result.valid:
            return "yes", why
        deep = check_file(path, deep=True, now_ms=result.checked_at_ms)
        if not deep.valid:
            return "yes", [*why, f"found with --deep: {first_error(deep)}"]
        return "no", [*why, "rbkit finds nothing, even with --deep"]
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


def category(said7: Said, said82: Said | None) -> str:
    """The 'what Redis said' bucket for the totals."""
    first = "loads" if said7.kind == "loads" else f"refused: {said7.kind}"
    if said82 is None:
        return first
    second = "loads" if said82.kind == "loads" else f"refused: {said82.kind}"
    return f"{first} -> {said82.server} {second}"


def conform(corpus: Path) -> tuple[list[Outcome], list[str], str]:
    """Check every distinct RDB of the corpus; the outcomes, the AOF paths and a clock note."""
    entries, aofs = read_manifest(corpus)
    window = run_window(corpus)
    clock = "expiry judged on the manifest run's date (README)"
    if window is None:
        now = int(time.time() * 1000)
        window, clock = (now, now), "run date unknown: expiry judged now"
    saids7 = [said_7_0(e, window) for e in entries]
    try:
        binary_82: ServerBinary | None = find_binary("8.2")
    except ServerError:
        binary_82 = None
        clock += "; no Redis 8.2 server found"
    saids82: dict[int, Said] = {}
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
            saids82 = dict(zip(to_load, loaded, strict=True))
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


def print_report(outcomes: Iterable[Outcome], aofs: list[str], clock: str) -> None:
    """The table, the AOF list and the totals."""
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
    print(f"AOF: not yet checked (issue 3): {len(aofs)} files")
    for path in aofs:
        print(f"  {path}")
    print()
    totals = Counter(o.agree for o in outcomes)
    print(
        f"files {len(outcomes)}, agree {totals['yes']}, disagree {totals['no']}, "
        f"n-a {totals['n-a']} ({clock})"
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
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.tsv").is_file():
        print(f"error: {args.corpus}/MANIFEST.tsv not found", file=sys.stderr)
        return 2
    outcomes, aofs, clock = conform(args.corpus)
    print_report(outcomes, aofs, clock)
    return 1 if any(o.agree == "no" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
