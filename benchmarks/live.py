"""Time `rbkit diff` reading a live server (the benchmark RDB loaded into a throwaway Redis
7.0) against that server's own `SAVE` of the same data, in one run: by its replication
snapshot (`--via snapshot`, with the server's default repl-diskless-sync-delay of 5 s, the
same with `--sync-now`, and with 0) and by SCAN (`--via scan`); and the same diff with the
server's own dump file in its place, so that the last column, the diff's extra time over that
one, is what reading the live server cost. Ratios, not absolute times: the machines are shared.

    .venv/bin/python benchmarks/live.py                  # benchmarks/data/bench.rdb
    .venv/bin/python benchmarks/live.py path/to/dump.rdb --no-scan
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import Command, default_rbkit, rss_floor_kb, run_once  # noqa: E402

from toolkit.server.process import find_binary, running_server  # noqa: E402

DATA = ROOT / "benchmarks" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DATA / "bench.rdb")
    parser.add_argument("--no-scan", action="store_true", help="skip --via scan (minutes)")
    parser.add_argument("--rbkit", default=default_rbkit())
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file}: missing; run benchmarks/make_data.py first", file=sys.stderr)
        return 2
    floor = rss_floor_kb()
    rows = []
    with running_server(find_binary("7.0"), config={"save": ""}) as server:
        server.stop()
        shutil.copyfile(args.file, server.directory / "dump.rdb")
        server.start(timeout=600)
        client = server.client(socket_timeout=600)
        keys = sum(v["keys"] for k, v in client.info("keyspace").items())
        started = time.perf_counter()
        client.save()
        save_s = time.perf_counter() - started
        rows.append(["SAVE (the server's own)", save_s, None, 1.0, None])
        url = f"redis://127.0.0.1:{server.port}"
        saved = server.directory / "dump.rdb"
        argv = [args.rbkit, "diff", str(args.file), str(saved), "--json"]
        run = run_once(Command("diff FILE its SAVE", argv, ok_codes=(0, 1), timeout=3600))
        if run.error:
            print(f"diff of two files failed: {run.error}", file=sys.stderr)
            return 1
        files_s = run.wall_s
        rss = max(run.peak_rss_kb - floor, 0) / 1024
        rows.append(["diff FILE (its SAVE, from disk)", files_s, rss, files_s / save_s, None])
        cases = [("diff --via snapshot (delay 5 s)", ["--via", "snapshot"], "5")]
        cases.append(("diff --sync-now (delay 5 s)", ["--via", "snapshot", "--sync-now"], "5"))
        cases.append(("diff --via snapshot (delay 0)", ["--via", "snapshot"], "0"))
        if not args.no_scan:
            cases.append(("diff --via scan", ["--via", "scan"], "0"))
        for label, how, delay in cases:
            client.config_set("repl-diskless-sync-delay", delay)
            argv = [args.rbkit, "diff", str(args.file), url, *how, "--json"]
            run = run_once(Command(label, argv, ok_codes=(0, 1), timeout=3600))
            if run.error:
                rows.append([label, None, None, run.error, None])
                continue
            rss = max(run.peak_rss_kb - floor, 0) / 1024
            extra = (run.wall_s - files_s) / save_s
            rows.append([label, run.wall_s, rss, run.wall_s / save_s, extra])
    print(f"{args.file.name}: {keys:,} keys")
    headers = ["", "seconds", "peak RSS MB", "x SAVE", "reading: extra x SAVE"]
    print(tabulate(rows, headers, floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
