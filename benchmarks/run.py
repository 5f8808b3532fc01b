"""Time rbkit against redis-check-rdb and redis-check-aof (and peers), and rbkit diff.

Each command runs N times (--runs, --aof-runs, --diff-runs); the table shows the best wall time
and the highest peak RSS over those runs (ru_maxrss from os.wait4, taken by a small launcher).
A command that fails or times out shows that in its row and the run carries on.
This is a benchmark, not a test: nothing here asserts a timing.

    python benchmarks/run.py                     # bench.rdb, bench-aof (1 run), diff: best of 3
    python benchmarks/run.py --no-aof --no-diff  # the RDB table only
    python benchmarks/run.py --aof-only          # the AOF table only
    python benchmarks/run.py --with-rdbtools     # also rdbtools' `rdb --command json`
    python benchmarks/run.py --memory-growth     # rbkit's peak RSS on bench vs bench-x4
    python benchmarks/run.py --diff-only         # rbkit diff bench.rdb bench-diff.rdb only (and
                                                 # export, and the diff's in-memory join)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

DATA_DIR = Path(__file__).resolve().parent / "data"
REDIS_CHECK_RDB = "/usr/bin/redis-check-rdb"
REDIS_CHECK_AOF = "/usr/bin/redis-check-aof"
KEYS_READ_RE = re.compile(rb"(\d+) keys read")
DIFF_SCHEMA = "rbkit.diff/1"


@dataclass
class Command:
    """One benchmarked command line."""

    label: str
    argv: list[str]
    timeout: float | None = None  # seconds; the child is killed after that
    runs: int | None = None  # overrides --runs (for very slow peers)
    keep_stdout: bool = True  # False: stdout goes to /dev/null (huge outputs)
    ok_codes: tuple[int, ...] = (0,)  # exit codes that mean success (diff: 1 = differences)
    env: dict[str, str] | None = None  # set in the command's environment


@dataclass
class Run:
    """What one execution of a command measured."""

    wall_s: float
    peak_rss_kb: int
    returncode: int  # negative: killed by that signal
    timed_out: bool
    keys: int | None
    error: str | None
    commands: int | None = None  # AOF commands read (rbkit's JSON `aof.commands` total)
    diff: dict[str, Any] | None = None  # rbkit diff's totals and counters (diff_from_output)


@dataclass
class Result:
    """All runs of one command, with the best wall time and the highest peak RSS."""

    label: str
    argv: list[str]
    runs: list[Run] = field(default_factory=list)

    @property
    def ok_runs(self) -> list[Run]:
        return [r for r in self.runs if r.error is None]

    @property
    def best_wall_s(self) -> float | None:
        return min((r.wall_s for r in self.ok_runs), default=None)

    @property
    def peak_rss_kb(self) -> int | None:
        return max((r.peak_rss_kb for r in self.ok_runs), default=None)

    @property
    def keys(self) -> int | None:
        return next((r.keys for r in self.ok_runs if r.keys is not None), None)

    @property
    def commands(self) -> int | None:
        return next((r.commands for r in self.ok_runs if r.commands is not None), None)

    @property
    def diff(self) -> dict[str, Any] | None:
        return next((r.diff for r in self.ok_runs if r.diff is not None), None)

    @property
    def timed_out(self) -> bool:
        """No run finished and the series stopped at a timeout."""
        return not self.ok_runs and any(r.timed_out for r in self.runs)

    @property
    def error(self) -> str | None:
        """The first failure (a failed run stops the series), or None if all runs passed."""
        if not self.runs:
            return "not run"
        return next((r.error for r in self.runs if r.error is not None), None)


def default_rbkit() -> str:
    """The rbkit console script next to this Python, else on PATH, else the repo's venv."""
    beside = Path(sys.executable).with_name("rbkit")
    if beside.exists():
        return str(beside)
    found = shutil.which("rbkit")
    return found or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "rbkit")


def keys_from_output(stdout: bytes) -> int | None:
    """The key count in redis-check-rdb's "N keys read" line or in rbkit's JSON totals
    (for `rbkit diff --json`: the keys read from both sides)."""
    match = KEYS_READ_RE.search(stdout)
    if match:
        return int(match.group(1))
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("schema") == DIFF_SCHEMA:
        reads = [(data.get(side) or {}).get("keys_read") for side in ("a", "b")]
        return sum(reads) if all(isinstance(n, int) for n in reads) else None
    totals = data.get("totals") if isinstance(data, dict) else None
    keys = totals.get("keys") if isinstance(totals, dict) else None
    return keys if isinstance(keys, int) else None


def commands_from_output(stdout: bytes) -> int | None:
    """The number of AOF commands in rbkit's JSON report: the sum of `aof.commands`."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    aof = data.get("aof") if isinstance(data, dict) else None
    counts = aof.get("commands") if isinstance(aof, dict) else None
    if not isinstance(counts, dict):
        return None
    return sum(n for n in counts.values() if isinstance(n, int))


def diff_from_output(stdout: bytes) -> dict[str, Any] | None:
    """What `rbkit diff --json` found: its total counts and how many values it compared."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("schema") != DIFF_SCHEMA:
        return None
    counts = (data.get("totals") or {}).get("keys") or {}
    found = {k: counts.get(k) for k in ("a", "b", "removed", "added", "changed", "unchanged")}
    found.update({k: data.get(k) for k in ("keys_expired", "values_compared", "same")})
    return found


def last_line(text: bytes) -> str:
    lines = [line.strip() for line in text.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


# The launcher: a bare Python (-I -S) that forks and execs the command, waits for it with
# os.wait4 and writes "wall_s maxrss_kb returncode timed_out" to the fd in argv[1].
# Why not fork from this process: a child's ru_maxrss includes the pages it had before exec
# (all of a vfork parent's high-water mark, a fork parent's anonymous pages), and this
# process is big (tabulate, the page-cache warm-up). The launcher is about 5 MB, which is
# the floor under every peak RSS reported (rss_floor_kb()).
LAUNCHER = """
import os, signal, sys, time
fd, timeout, path, argv = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
timed_out = 0
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(path, argv)
    except OSError as exc:
        os.write(2, ("cannot start: %s\\n" % exc).encode())
    os._exit(127)
def on_alarm(signum, frame):
    global timed_out
    timed_out = 1
    os.kill(pid, signal.SIGKILL)
if timeout > 0:
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
signal.setitimer(signal.ITIMER_REAL, 0)
code = os.waitstatus_to_exitcode(status)
os.write(fd, ("%r %d %d %d" % (wall, usage.ru_maxrss, code, timed_out)).encode())
"""


def run_once(command: Command) -> Run:
    """Run the command once under the launcher: wall from fork to reap, RSS from os.wait4."""
    path = shutil.which(command.argv[0])
    if path is None:
        return Run(0.0, 0, -1, False, None, f"cannot start: {command.argv[0]} not found")
    read_end, write_end = os.pipe()
    timeout = command.timeout or 0
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(write_end), str(timeout)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            subprocess.run(
                [*launcher, path, *command.argv],
                stdin=subprocess.DEVNULL,
                stdout=out if command.keep_stdout else subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_end,),
                env={**os.environ, **command.env} if command.env else None,
                check=False,
            )
        finally:
            os.close(write_end)
            with os.fdopen(read_end, "rb") as pipe:
                report = pipe.read().split()
        out.seek(0)
        err.seek(0)
        output, errors = out.read(), err.read()
    if len(report) != 4:
        return Run(0.0, 0, -1, False, None, f"launcher failed: {last_line(errors)}")
    wall, peak_kb, returncode, timed_out = float(report[0]), *map(int, report[1:])
    error = None
    if timed_out:
        error = f"timeout after {timeout:.0f} s"
    elif returncode not in command.ok_codes:
        error = f"exit {returncode}: {last_line(errors) or last_line(output)}"
    keys = keys_from_output(output) if error is None else None
    count = commands_from_output(output) if error is None else None
    found = diff_from_output(output) if error is None else None
    return Run(wall, peak_kb, returncode, bool(timed_out), keys, error, count, found)


def rss_floor_kb() -> int:
    """ru_maxrss of `true` run by the launcher: the least any command can report."""
    return run_once(Command("true", ["true"])).peak_rss_kb


def measure(commands: list[Command], runs: int) -> list[Result]:
    """Run every command `runs` times, in rounds (one run of each per round), so a change in
    the machine's load hits all of them alike. A command that fails is not run again."""
    results = [Result(c.label, c.argv) for c in commands]
    for round_ in range(max(c.runs or runs for c in commands)):
        for command, result in zip(commands, results, strict=True):
            if round_ >= (command.runs or runs) or any(r.error for r in result.runs):
                continue
            print(f"  {command.label} ...", end=" ", file=sys.stderr, flush=True)
            run = run_once(command)
            result.runs.append(run)
            status = run.error or f"{run.wall_s:.2f} s, {run.peak_rss_kb / 1024:.0f} MB"
            print(status, file=sys.stderr, flush=True)
    return results


def warm_cache(path: Path) -> None:
    """Read the file (every file under a directory) once so commands find it in the page cache."""
    buffer = bytearray(1 << 20)  # small and reused: keeps this process's RSS low
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if not file.is_file():
            continue
        with file.open("rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def size_of(path: Path) -> int:
    """Bytes in a file, or in all the files under a directory."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def table(
    results: list[Result],
    size_bytes: int,
    reference_label: str = "redis-check-rdb",
    unit: str = "keys",
) -> str:
    """The results as a table: wall, RSS, ratio to the reference command, <unit>/s, MB/s.

    `unit` is the Result attribute counted ("keys" or "commands"); a command that does not
    report it (redis-check-*) borrows the count of one that does. A command that timed out
    shows "timeout" and bounds: the RSS it had reached, the least ratio, the most throughput.
    """
    reference = next((r.best_wall_s for r in results if r.label == reference_label), None)
    fallback = next((getattr(r, unit) for r in results if getattr(r, unit) is not None), None)
    rows = []
    for r in results:
        wall, rss = r.best_wall_s, r.peak_rss_kb
        count = getattr(r, unit) or fallback
        if r.timed_out:
            cut = max(run.wall_s for run in r.runs)
            seen = max(run.peak_rss_kb for run in r.runs)
            rows.append(
                [
                    r.label,
                    f"timeout (> {cut:.0f})",
                    f">= {seen / 1024:.0f}",
                    f"> {cut / reference:.0f}x" if reference else "",
                    f"< {count / cut:,.0f}" if count else "",
                    f"< {size_bytes / 1e6 / cut:.1f}",
                ]
            )
            continue
        if r.error is not None or wall is None or rss is None:
            rows.append([r.label, r.error, "", "", "", ""])
            continue
        rows.append(
            [
                r.label,
                f"{wall:.2f}",
                f"{rss / 1024:.0f}",
                f"{wall / reference:.2f}x" if reference else "",
                f"{count / wall:,.0f}" if count else "",
                f"{size_bytes / 1e6 / wall:.1f}",
            ]
        )
    headers = [
        "command",
        "wall s (best)",
        "peak RSS MB",
        f"vs {reference_label}",
        f"{unit}/s",
        "MB/s",
    ]
    return tabulate(rows, headers=headers, disable_numparse=True)


def commands(path: Path, args: argparse.Namespace) -> list[Command]:
    """The commands compared on one file."""
    file = str(path)
    listed = [
        Command("redis-check-rdb", [REDIS_CHECK_RDB, file]),
        Command("rbkit check --json", [args.rbkit, "check", "--json", file]),
        Command("rbkit check --json --quick", [args.rbkit, "check", "--json", "--quick", file]),
    ]
    if args.with_rdbtools:
        rdb = shutil.which("rdb") or str(Path(sys.executable).with_name("rdb"))
        listed.append(
            Command(
                "rdbtools rdb --command json",
                [rdb, "--command", "json", file],
                timeout=args.rdbtools_timeout,
                runs=1,
                keep_stdout=False,
            )
        )
    return listed


def aof_target(path: Path) -> tuple[Path, Path]:
    """What each checker is given for an AOF: (redis-check-aof's file, rbkit's path).

    A Redis 7+ appendonlydir: its manifest for redis-check-aof, the directory for rbkit.
    A manifest or a single AOF file: that file for both.
    """
    if not path.is_dir():
        return path, path
    manifests = sorted(path.glob("*.manifest"))
    preferred = path / "appendonly.aof.manifest"
    manifest = preferred if preferred in manifests else next(iter(manifests), preferred)
    return manifest, path


def aof_commands(path: Path, args: argparse.Namespace) -> list[Command]:
    """The commands compared on one AOF: --aof-runs each, killed after --aof-timeout s."""
    manifest, target = aof_target(path)
    timeout, runs = args.aof_timeout or None, args.aof_runs
    return [
        Command("redis-check-aof", [REDIS_CHECK_AOF, str(manifest)], timeout, runs),
        Command("rbkit check --json", [args.rbkit, "check", "--json", str(target)], timeout, runs),
    ]


def json_entry(results: list[Result], extra: dict[str, Any]) -> dict[str, Any]:
    """Every run of every command, plus the summary values."""
    data = {**extra, "results": [asdict(r) for r in results]}
    for entry, r in zip(data["results"], results, strict=True):
        entry.update(
            best_wall_s=r.best_wall_s,
            peak_rss_kb=r.peak_rss_kb,
            keys=r.keys,
            commands=r.commands,
            error=r.error,
        )
    return data


def print_json(results: list[Result], extra: dict[str, Any]) -> None:
    """json_entry() on stdout."""
    print(json.dumps(json_entry(results, extra), indent=2))


def compare(path: Path, args: argparse.Namespace, floor: int) -> dict[str, Any]:
    """The RDB table (printed unless --json); returns the JSON entry."""
    size = path.stat().st_size
    print(f"{path.name}: {size / 1e6:.1f} MB, best of {args.runs}", file=sys.stderr)
    warm_cache(path)
    results = measure(commands(path, args), args.runs)
    if not args.json:
        print(f"\n{path} ({size / 1e6:.1f} MB), best of {args.runs} runs\n")
        print(table(results, size))
        print(f"\n(peak RSS includes the launcher's {floor / 1024:.0f} MB floor)", flush=True)
    return json_entry(results, {"file": str(path), "size_bytes": size, "rss_floor_kb": floor})


def compare_aof(path: Path, args: argparse.Namespace, floor: int) -> dict[str, Any]:
    """The AOF table (printed unless --json); returns the JSON entry."""
    size = size_of(path)
    runs = f"best of {args.aof_runs} runs" if args.aof_runs > 1 else "1 run"
    cap = f"timeout {args.aof_timeout:.0f} s" if args.aof_timeout else "no timeout"
    print(f"{path.name}: {size / 1e6:.1f} MB, {runs}, {cap}", file=sys.stderr)
    warm_cache(path)
    results = measure(aof_commands(path, args), args.aof_runs)
    if not args.json:
        print(f"\n{path} ({size / 1e6:.1f} MB), {runs}, {cap}\n")
        print(table(results, size, "redis-check-aof", "commands"))
        rbkit = results[-1]
        if rbkit.commands is not None and rbkit.keys is not None:
            print(f"\nrbkit replayed {rbkit.commands:,} commands into {rbkit.keys:,} keys")
        print(f"(peak RSS includes the launcher's {floor / 1024:.0f} MB floor)", flush=True)
    return json_entry(results, {"file": str(path), "size_bytes": size, "rss_floor_kb": floor})


# The in-memory join of every side kind (toolkit/diff/compute.py), which two RDB files used
# before the out-of-core one (toolkit/diff/columnar.py): timed beside it.
TABLE_ENGINE = {"RBKIT_DIFF_ENGINE": "table"}


def diff_commands(a: Path, b: Path, args: argparse.Namespace, out_dir: Path) -> list[Command]:
    """`rbkit check` of A and of B (the reference: there is no peer tool for a diff), `rbkit
    diff`, `rbkit diff --values` unless --no-diff-values, each also with the in-memory join
    unless --no-diff-table, and `rbkit export` of A to Parquet; --diff-runs each,
    --diff-timeout cap."""
    timeout, runs = args.diff_timeout or None, args.diff_runs
    diff = [args.rbkit, "diff", "--json", str(a), str(b)]
    listed = [
        Command(f"rbkit check --json {a.name}", [args.rbkit, "check", "--json", str(a)]),
        Command(f"rbkit check --json {b.name}", [args.rbkit, "check", "--json", str(b)]),
        Command("rbkit diff --json", diff, timeout, runs, ok_codes=(0, 1)),
    ]
    if not args.no_diff_values:
        listed.append(
            Command("rbkit diff --json --values", [*diff, "--values"], timeout, runs, True, (0, 1))
        )
    if not args.no_diff_table:
        listed.append(
            Command("rbkit diff --json (in-memory join)", diff, timeout, runs, True, (0, 1),
                    TABLE_ENGINE)
        )  # fmt: skip
        if not args.no_diff_values:
            listed.append(
                Command("rbkit diff --json --values (in-memory join)", [*diff, "--values"],
                        timeout, runs, True, (0, 1), TABLE_ENGINE)
            )  # fmt: skip
    export = [args.rbkit, "export", str(a), "-o", str(out_dir / "export.parquet")]
    listed.append(Command(f"rbkit export {a.name} -o export.parquet", export, timeout, runs))
    return listed


def diff_table(results: list[Result], a: Path, b: Path) -> str:
    """The diff rows: wall, RSS, ratio to `rbkit check` of A and of A and B together, keys and
    MB read per second.

    A diff reads both files, `check` and `export` one: keys/s and MB/s count what each read.
    """
    check_a, check_b = results[0].best_wall_s, results[1].best_wall_s
    both = check_a + check_b if check_a and check_b else None
    size_a, size_b = a.stat().st_size, b.stat().st_size
    rows = []
    for i, r in enumerate(results):
        size = size_a + size_b if r.label.startswith("rbkit diff") else size_b if i == 1 else size_a
        if r.timed_out:
            cut = max(run.wall_s for run in r.runs)
            seen = max(run.peak_rss_kb for run in r.runs)
            ratio = f"> {cut / check_a:.0f}x" if check_a else ""
            rows.append(
                [r.label, f"timeout (> {cut:.0f})", f">= {seen / 1024:.0f}", ratio, "", "", ""]
            )
            continue
        wall, rss = r.best_wall_s, r.peak_rss_kb
        if r.error is not None or wall is None or rss is None:
            rows.append([r.label, r.error, "", "", "", "", ""])
            continue
        rows.append(
            [
                r.label,
                f"{wall:.2f}",
                f"{rss / 1024:.0f}",
                f"{wall / check_a:.2f}x" if check_a else "",
                f"{wall / both:.2f}x" if both else "",
                f"{r.keys / wall:,.0f}" if r.keys else "",
                f"{size / 1e6 / wall:.1f}",
            ]
        )
    headers = [
        "command",
        "wall s (best)",
        "peak RSS MB",
        "vs check A",
        "vs check A+B",
        "keys/s",
        "MB/s",
    ]
    return tabulate(rows, headers=headers, disable_numparse=True)


def diff_found(r: Result) -> str | None:
    """One line: what a diff run found (to see the pair is what make_data.py made)."""
    d = r.diff
    if d is None:
        return None
    text = (
        f"{r.label}: A {d['a']:,} keys, B {d['b']:,}: {d['removed']:,} removed, "
        f"{d['added']:,} added, {d['changed']:,} changed, {d['unchanged']:,} unchanged"
    )
    if d.get("values_compared"):
        text += f"; {d['values_compared']:,} values compared"
    return text


def compare_diff(a: Path, b: Path, args: argparse.Namespace, floor: int) -> dict[str, Any]:
    """The diff table (printed unless --json); returns the JSON entry."""
    runs = f"best of {args.diff_runs} runs" if args.diff_runs > 1 else "1 run"
    cap = f"timeout {args.diff_timeout:.0f} s" if args.diff_timeout else "no timeout"
    print(f"diff {a.name} {b.name}: {runs}, {cap}", file=sys.stderr)
    warm_cache(a)
    warm_cache(b)
    with tempfile.TemporaryDirectory(prefix="rbkit-bench-") as out_dir:
        results = measure(diff_commands(a, b, args, Path(out_dir)), args.diff_runs)
    sizes = f"{a.stat().st_size / 1e6:.1f} MB + {b.stat().st_size / 1e6:.1f} MB"
    if not args.json:
        print(f"\nrbkit diff {a} {b} ({sizes}), {runs}, {cap}\n")
        print(diff_table(results, a, b))
        print()
        for r in results[2:]:
            line = diff_found(r)
            if line:
                print(line)
        print(
            "(no peer tool diffs RDB files: the references are `rbkit check` of A, and of A and "
            "B together, which a diff reads both of; `rbkit export` writes A's keys to Parquet)"
        )
        print(f"(peak RSS includes the launcher's {floor / 1024:.0f} MB floor)", flush=True)
    extra = {
        "a": str(a),
        "b": str(b),
        "size_bytes": a.stat().st_size + b.stat().st_size,
        "rss_floor_kb": floor,
    }
    data = json_entry(results, extra)
    for entry, r in zip(data["results"], results, strict=True):
        entry["diff"] = r.diff
    return data


def memory_growth(args: argparse.Namespace) -> int:
    """rbkit check --json on bench.rdb and bench-x4.rdb: both peak RSS values and the ratio."""
    files = [args.data_dir / "bench.rdb", args.data_dir / "bench-x4.rdb"]
    missing = [f for f in files if not f.exists()]
    if missing:
        names = ", ".join(str(f) for f in missing)
        print(f"missing {names}: run benchmarks/make_data.py --x4", file=sys.stderr)
        return 2
    floor = rss_floor_kb()
    for f in files:
        warm_cache(f)
    checks = [
        Command(f"rbkit check --json {f.name}", [args.rbkit, "check", "--json", str(f)])
        for f in files
    ]
    results = measure(checks, args.runs)
    if args.json:
        print_json(results, {"mode": "memory-growth", "rss_floor_kb": floor})
        return 0
    rows = []
    for f, r in zip(files, results, strict=True):
        rss = r.peak_rss_kb
        rows.append([f.name, f"{f.stat().st_size / 1e6:.1f}", r.error or f"{rss / 1024:.0f}"])
    print(tabulate(rows, headers=["file", "size MB", "peak RSS MB"], disable_numparse=True))
    small, large = results[0].peak_rss_kb, results[1].peak_rss_kb
    if small and large and not any(r.error for r in results):
        size_ratio = files[1].stat().st_size / files[0].stat().st_size
        print(f"\npeak RSS ratio x4/x1: {large / small:.2f} (file size ratio {size_ratio:.2f})")
    print(f"(peak RSS includes the launcher's {floor / 1024:.0f} MB floor)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, help="RDB file (default data/bench.rdb)")
    aof = parser.add_argument_group(
        "AOF table (run by default when no RDB file is named, if data/bench-aof exists)"
    )
    aof.add_argument(
        "--aof-path",
        type=Path,
        help="appendonlydir, manifest or single AOF (default data/bench-aof/appendonlydir)",
    )
    aof.add_argument("--aof-runs", type=int, default=1, help="runs per AOF command")
    aof.add_argument(
        "--aof-timeout", type=float, default=900, help="cap per AOF run, seconds (0: none)"
    )
    only = aof.add_mutually_exclusive_group()
    only.add_argument("--no-aof", action="store_true", help="skip the AOF table")
    only.add_argument("--aof-only", action="store_true", help="only the AOF table")
    diff = parser.add_argument_group(
        "diff table (run by default when no RDB file is named, if data/bench-diff.rdb exists)"
    )
    diff.add_argument(
        "--diff-pair",
        nargs=2,
        type=Path,
        metavar=("A", "B"),
        help="the two RDB files to diff (default data/bench.rdb data/bench-diff.rdb)",
    )
    diff.add_argument(
        "--diff-runs", type=int, default=3, help="runs per diff command (the best is shown)"
    )
    diff.add_argument(
        "--diff-timeout", type=float, default=1200, help="cap per diff run, seconds (0: none)"
    )
    diff.add_argument("--no-diff-values", action="store_true", help="skip `diff --values`")
    diff.add_argument(
        "--no-diff-table", action="store_true", help="skip the diffs with the in-memory join"
    )
    diff_only = diff.add_mutually_exclusive_group()
    diff_only.add_argument("--no-diff", action="store_true", help="skip the diff table")
    diff_only.add_argument("--diff-only", action="store_true", help="only the diff table")
    parser.add_argument("--runs", type=int, default=3, help="runs per command (best is shown)")
    parser.add_argument("--json", action="store_true", help="print raw results as JSON")
    parser.add_argument("--rbkit", default=default_rbkit(), help="rbkit executable")
    parser.add_argument("--with-rdbtools", action="store_true", help="also time rdbtools")
    parser.add_argument(
        "--rdbtools-timeout", type=float, default=600, help="cap on rdbtools, seconds"
    )
    parser.add_argument(
        "--memory-growth", action="store_true", help="rbkit peak RSS: bench vs bench-x4"
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="generated files")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.aof_runs < 1 or args.diff_runs < 1:
        parser.error("--runs, --aof-runs and --diff-runs must be at least 1")
    if args.aof_only and args.diff_only:
        parser.error("--aof-only and --diff-only: pick one")
    if args.memory_growth:
        return memory_growth(args)
    path = args.file or args.data_dir / "bench.rdb"
    asked_aof = args.aof_only or args.aof_path is not None
    aof_path = args.aof_path or args.data_dir / "bench-aof" / "appendonlydir"
    asked_diff = args.diff_only or args.diff_pair is not None
    pair = args.diff_pair or (args.data_dir / "bench.rdb", args.data_dir / "bench-diff.rdb")
    run_rdb = not args.aof_only and not args.diff_only
    run_aof = not args.no_aof and not args.diff_only and (asked_aof or args.file is None)
    run_diff = not args.no_diff and not args.aof_only and (asked_diff or args.file is None)
    if run_rdb and not path.exists():
        print(f"{path} not found: run benchmarks/make_data.py first", file=sys.stderr)
        return 2
    if run_aof and not aof_path.exists():
        print(f"{aof_path} not found: run benchmarks/make_data.py", file=sys.stderr)
        if asked_aof:
            return 2
        print("(AOF table skipped)", file=sys.stderr)
        run_aof = False
    missing = [p for p in pair if not p.exists()]
    if run_diff and missing:
        print(f"{missing[0]} not found: run benchmarks/make_data.py", file=sys.stderr)
        if asked_diff:
            return 2
        print("(diff table skipped)", file=sys.stderr)
        run_diff = False
    floor = rss_floor_kb()
    data: dict[str, Any] = {}
    if run_rdb:
        data = compare(path, args, floor)
    if run_aof:
        data["aof"] = compare_aof(aof_path, args, floor)
        # The same keyspace as an RDB base (Redis 7's default layout), when it was built.
        preamble = args.data_dir / "bench-aof-preamble" / "appendonlydir"
        if args.aof_path is None and preamble.exists():
            data["aof_preamble"] = compare_aof(preamble, args, floor)
    if run_diff:
        data["diff"] = compare_diff(*pair, args, floor)
    if args.json:
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
