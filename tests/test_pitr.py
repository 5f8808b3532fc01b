"""Point in time: undo the FLUSHALL (issue 12).

A real server with ``appendonly yes`` (and ``aof-timestamp-enabled yes`` where it has it)
takes writes, an AOF rewrite, more writes, a FLUSHALL and more writes. What it held just
before the FLUSHALL is recorded from the server itself (DEBUG DIGEST, and every key's DUMP);
``--before FLUSHALL``, ``--until`` and ``--before-offset`` must each give exactly that back,
in a drill, over the network and into a data directory, and leave the original files as they
were.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from restore_support import Target, binary, make_target, rbkit

from toolkit.server.process import running_server

__all__ = ["make_target"]  # the fixture


@dataclass
class History:
    backup: Path  # the appendonlydir (7.0) or appendonly.aof (6.2), copied out of the server
    digest: str  # DEBUG DIGEST just before the FLUSHALL
    dumps: dict[bytes, bytes]  # every key's DUMP just before the FLUSHALL (db 0)
    before_flush: int  # a unix second after every write before the FLUSHALL, before it
    has_ts: bool


def _files(path: Path) -> dict[str, str]:
    paths = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _dumps(client) -> dict[bytes, bytes]:
    return {k: client.dump(k) for k in client.scan_iter(count=1000)}


def _next_second() -> None:
    now = time.time()
    time.sleep(int(now) + 1.05 - now)


def make_history(version: str, root: Path) -> History:
    """Run the incident on a real server of ``version`` and keep its AOF."""
    data = root / f"server-{version}"
    data.mkdir()
    settings = {"appendonly": "yes", "appendfsync": "always"}
    has_ts = version != "6.2"  # aof-timestamp-enabled came with Redis 7.0
    if has_ts:
        settings["aof-timestamp-enabled"] = "yes"
        settings["enable-debug-command"] = "yes"
    with running_server(binary(version), directory=data, config=settings) as server:
        c = server.client()
        for i in range(200):
            c.set(f"user:{i}", f"v{i}")
        c.rpush("queue", *range(50))
        c.hset("config", mapping={"a": "1", "b": "2"})
        c.bgrewriteaof()
        while int(c.info("persistence")["aof_rewrite_in_progress"]) or int(
            c.info("persistence").get("aof_rewrite_scheduled", 0)
        ):
            time.sleep(0.05)
        for i in range(200, 260):
            c.set(f"user:{i}", f"v{i}")
        c.delete("user:0", "user:1")
        c.set("later", "x", px=10**9)  # a TTL far ahead: the same absolute time restored
        c.zadd("board", {"a": 1, "b": 2})
        _next_second()
        digest = c.execute_command("DEBUG", "DIGEST") if has_ts else b""
        dumps = _dumps(c)
        before_flush = int(time.time())
        _next_second()
        c.flushall()
        c.set("after:flush", "1")
        c.close()
    name = "appendonlydir" if version != "6.2" else "appendonly.aof"
    backup = root / f"backup-{version}" / name
    backup.parent.mkdir()
    (shutil.copytree if (data / name).is_dir() else shutil.copyfile)(data / name, backup)
    return History(backup, _text(digest), dumps, before_flush, has_ts)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    yield make_history("7.0", tmp_path_factory.mktemp("pitr"))


def holds(server_digest: str, dumps: dict[bytes, bytes], h: History) -> None:
    assert server_digest == h.digest
    assert dumps == h.dumps


def test_the_timeline_names_the_flushall(history: History) -> None:
    run = rbkit("check", history.backup, "--timeline", "--json")
    assert run.code == 0, run.text
    t = run.json()["timeline"]
    flushes = [e for e in t["events"] if e["kind"] == "flushall"]
    assert len(flushes) == 1
    event = flushes[0]
    assert event["file"].endswith(".incr.aof") and event["ts"] > history.before_flush
    # When the writes after the rewrite came in the same second as it, their #TS went into
    # the file the rewrite replaced, and they come before the first #TS of the new incr file;
    # when a second turned in between (a loaded machine), the new file begins with a #TS.
    incr = history.backup / event["file"]
    begins_with_ts = incr.read_bytes().startswith(b"#TS:")
    assert (t["before_first_ts"] == 0) == begins_with_ts and t["last_ts"] == event["ts"]
    text = rbkit("check", history.backup, "--timeline")
    assert "flushall" in text.out and event["file"] in text.out


@pytest.mark.parametrize(
    "cut", ["--before FLUSHALL", "--until", "--before-offset"], ids=["before", "until", "offset"]
)
def test_a_cut_restored_over_the_network_is_the_state_before_the_flushall(
    history: History, cut: str
) -> None:
    original = _files(history.backup)
    if cut == "--until":
        args = ["--until", str(history.before_flush)]
    elif cut == "--before-offset":
        events = rbkit("check", history.backup, "--timeline", "--json").json()["timeline"]
        flush = next(e for e in events["events"] if e["kind"] == "flushall")
        args = ["--before-offset", f"{flush['file']}:{flush['offset']}"]
    else:
        args = cut.split()
    with running_server(binary("7.0"), config={"enable-debug-command": "yes"}) as fresh:
        url = f"redis://127.0.0.1:{fresh.port}"
        run = rbkit("restore", history.backup, *args, "--to", url, "--yes", "--json")
        assert run.code == 0, run.text
        report = run.json()
        assert report["cut"]["commands_cut"] >= 2  # the FLUSHALL and the write after it
        assert report["cut"]["keys_after"] != report["cut"]["keys_before"]
        c = fresh.client()
        holds(_text(c.execute_command("DEBUG", "DIGEST")), _dumps(c), history)
    assert _files(history.backup) == original


def test_a_cut_restored_into_a_data_directory(history: History, make_target) -> None:
    t: Target = make_target("7.0", fill=True)
    run = rbkit(
        "restore", history.backup, "--before", "FLUSHALL", "--config", t.conf, "--yes", "--json"
    )
    assert run.code == 0, run.text
    assert run.json()["outcome"] == "restored"
    c = t.client()
    holds(_text(c.execute_command("DEBUG", "DIGEST")), _dumps(c), history)
    t.restart()  # and it stays so
    c = t.client()
    holds(_text(c.execute_command("DEBUG", "DIGEST")), _dumps(c), history)


def test_a_cut_drill(history: History) -> None:
    run = rbkit("restore", history.backup, "--before", "flushall", "--stage-only", "--json")
    assert run.code == 0, run.text
    report = run.json()
    assert report["outcome"] == "verified"
    assert report["cut"]["why"] == "before the last FLUSHALL"


def test_until_needs_time_annotations_and_a_6_2_aof_is_cut_by_command(tmp_path: Path) -> None:
    h = make_history("6.2", tmp_path)
    run = rbkit("restore", h.backup, "--until", str(h.before_flush), "--stage-only")
    assert run.code == 2
    assert "no #TS annotations" in run.err and "--before COMMAND" in run.err
    original = _files(h.backup)
    with running_server(binary("6.2")) as fresh:
        url = f"redis://127.0.0.1:{fresh.port}"
        run = rbkit("restore", h.backup, "--before", "FLUSHALL", "--to", url, "--yes", "--json")
        assert run.code == 0, run.text
        c = fresh.client()
        # 6.2 has no DEBUG DIGEST without enable-debug-command: compare every key's DUMP.
        assert _dumps(c) == h.dumps
    assert _files(h.backup) == original


def test_until_before_the_base_is_refused(history: History) -> None:
    """The rewrite's RDB base holds the state of its moment: nothing older can be cut out."""
    run = rbkit("restore", history.backup, "--until", "1000000000", "--stage-only")
    assert run.code == 2 and "is before the AOF's base was written" in run.err


def test_cut_options_refused_where_they_make_no_sense(history: History, tmp_path: Path) -> None:
    both = rbkit("restore", history.backup, "--before", "FLUSHALL", "--until", "1", "--stage-only")
    assert both.code == 2 and "one cut at a time" in both.err
    rollback = rbkit("restore", "--rollback", tmp_path, "--before", "FLUSHALL")
    assert rollback.code == 2 and "--before" in rollback.err
    missing = rbkit("restore", history.backup, "--before", "SWAPDB", "--stage-only")
    assert missing.code == 2 and "no SWAPDB" in missing.err
