"""Time `rbkit restore` of the RDB benchmark file, step by step, against the server's own
load time of that file (the floor any restore pays).

A throwaway target (Debian's redis-server 7.0) runs from its own redis.conf in a temp dir,
holding a little data of its own; rbkit restores benchmarks/data/bench.rdb into it with
`--json --yes` and the table shows each step's seconds and its ratio to the load time that
the target's log reports ("DB loaded from disk: N seconds") after the restore's start, with
the time the target is down (stop to the end of its start) and the time writes wait (the stop
to the end of the verification, when rbkit lets them through).
`--cache` first turns the file into a cache (a copy with nine keys in ten under a TTL that
runs out 20 to 60 minutes later, made by a throwaway server: make_data.make_cache_copy), and
times that: the keys whose TTL may run out during a drill are the ones rbkit must account for.
Run `benchmarks/make_data.py` first. Ratios, not absolute times: the machines are shared.

    .venv/bin/python benchmarks/restore.py                 # the drill, appendonly no, then yes
    .venv/bin/python benchmarks/restore.py --appendonly no
    .venv/bin/python benchmarks/restore.py --no-drill --runs 5   # the median of five
    .venv/bin/python benchmarks/restore.py --cache --appendonly no   # bench.rdb as a cache
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_data import make_cache_copy  # noqa: E402

from toolkit.server.process import find_binary, free_port  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
CACHE_AHEAD_MS, CACHE_SPREAD_MS = 20 * 60_000, 40 * 60_000
LOADED = re.compile(r"DB loaded from (disk|append only file|base file [^:]*): ([\d.]+) seconds")


def _config(directory: Path, port: int, appendonly: str) -> Path:
    conf = directory / "redis.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory / 'data'}\n"
        f"logfile {directory / 'redis.log'}\n"
        f'save ""\nappendonly {appendonly}\ndaemonize no\n'
    )
    (directory / "data").mkdir()
    return conf


def _start(binary: Path, conf: Path) -> None:
    subprocess.Popen(
        [os.fspath(binary), os.fspath(conf)],
        cwd=conf.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=False
    ).stdout.strip()


def _wait_up(port: int) -> None:
    for _ in range(600):
        if _cli(port, "ping") == "PONG":
            return
        time.sleep(0.05)
    raise SystemExit(f"the target on port {port} did not start")


def run(rdb: Path, appendonly: str) -> list[list[object]]:
    binary = find_binary("7.0").path
    with tempfile.TemporaryDirectory(prefix="rbkit-bench-restore-") as tmp:
        directory = Path(tmp)
        port = free_port()
        conf = _config(directory, port, appendonly)
        _start(binary, conf)
        try:
            _wait_up(port)
            _cli(port, "debug", "populate", "10000", "old")
            started = time.monotonic()
            done = subprocess.run(
                [
                    os.fspath(ROOT / ".venv" / "bin" / "rbkit"),
                    "restore",
                    os.fspath(rdb),
                    "--config",
                    os.fspath(conf),
                    "--yes",
                    "--json",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.monotonic() - started
        finally:
            _cli(port, "shutdown", "nosave")
        if done.returncode != 0:
            raise SystemExit(f"rbkit restore failed ({done.returncode}): {done.stderr[-2000:]}")
        report = json.loads(done.stdout)
        loads = LOADED.findall((directory / "redis.log").read_text(errors="replace"))
    if not loads:
        raise SystemExit("the target's log has no 'DB loaded' line")
    load = float(loads[-1][1])
    rows: list[list[object]] = []
    for step in report["steps"]:
        rows.append([step["name"], f"{step['seconds']:.2f}", f"{step['seconds'] / load:.2f}x"])
    seconds = {step["name"]: step["seconds"] for step in report["steps"]}
    down = sum(seconds.get(n, 0.0) for n in ("stop", "keep", "install", "start"))
    held = down + seconds.get("verify", 0.0)
    rows.append(["(all, wall)", f"{wall:.2f}", f"{wall / load:.2f}x"])
    rows.append(["target down: stop..start", f"{down:.2f}", f"{down / load:.2f}x"])
    rows.append(["writes wait: stop..verify", f"{held:.2f}", f"{held / load:.2f}x"])
    rows.append(["server's own load", f"{load:.2f}", "1.00x"])
    return rows


def run_drill(rdb: Path) -> list[list[object]]:
    """`rbkit restore RDB --stage-only`: each step against the scratch server's own load time
    (from its log, as the report gives it)."""
    started = time.monotonic()
    rbkit = os.fspath(ROOT / ".venv" / "bin" / "rbkit")
    done = subprocess.run(
        [rbkit, "restore", os.fspath(rdb), "--stage-only", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"rbkit restore --stage-only failed ({done.returncode}): {done.stderr}")
    report = json.loads(done.stdout)
    load = report["server"]["load_seconds"]
    rows: list[list[object]] = [
        [step["name"], f"{step['seconds']:.2f}", f"{step['seconds'] / load:.2f}x"]
        for step in report["steps"]
    ]
    rows.append(["(all, wall)", f"{wall:.2f}", f"{wall / load:.2f}x"])
    rows.append(["server's own load", f"{load:.2f}", "1.00x"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rdb", nargs="?", type=Path, default=DATA / "bench.rdb")
    parser.add_argument("--appendonly", choices=("no", "yes", "both"), default="both")
    parser.add_argument(
        "--no-drill", action="store_true", help="leave out the drill (restore --stage-only)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="restores per mode: the table is the median run's (by its total), and each "
        "run's total ratio is listed (the machines are noisy)",
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="time a copy of the file with nine keys in ten under a TTL 20 to 60 min ahead",
    )
    args = parser.parse_args()
    if not args.rdb.is_file():
        raise SystemExit(f"{args.rdb}: missing; run benchmarks/make_data.py first")
    if not args.cache:
        report(args)
        return
    with tempfile.TemporaryDirectory(prefix="rbkit-bench-cache-") as tmp:
        cache = Path(tmp) / f"{args.rdb.stem}-cache.rdb"
        print(f"{cache.name}: {args.rdb.name} with 9 keys in 10 under a TTL 20 to 60 min ahead")
        make_cache_copy(cache, args.rdb, CACHE_AHEAD_MS, CACHE_SPREAD_MS)
        args.rdb = cache
        report(args)


def report(args: argparse.Namespace) -> None:
    """The drill's table and each mode's, for ``args.rdb``."""
    modes = ("no", "yes") if args.appendonly == "both" else (args.appendonly,)
    size = args.rdb.stat().st_size / 1e6
    if not args.no_drill:
        print(f"\nrbkit restore {args.rdb.name} ({size:.1f} MB) --stage-only: the drill")
        print(tabulate(run_drill(args.rdb), headers=("step", "seconds", "vs server load")))
    for mode in modes:
        print(f"\nrbkit restore {args.rdb.name} ({size:.1f} MB) into redis 7.0, appendonly {mode}")
        runs = sorted((run(args.rdb, mode) for _ in range(max(1, args.runs))), key=_total)
        print(tabulate(runs[len(runs) // 2], headers=("step", "seconds", "vs server load")))
        if len(runs) > 1:
            totals = ", ".join(f"{_total(r):.2f}x" for r in runs)
            print(f"total vs server load, {len(runs)} runs: {totals} (median shown)")


def _total(rows: list[list[object]]) -> float:
    """A run's total (wall) against the server's own load, from its table."""
    return next(float(str(r[2]).rstrip("x")) for r in rows if r[0] == "(all, wall)")


if __name__ == "__main__":
    main()
