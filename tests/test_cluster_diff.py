"""``rbkit diff`` of cluster backup sets: two sets of a real 3-master Redis 7.0 cluster saved
before and after writes (the union of the shards' keys on each side), and a set against the
live cluster (every primary read). The expected differences are what the servers showed before
and after the writes, read with plain commands."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import cluster, save_set, write_with_cli
from conftest import invoke_cli
from fault_support import tmpfs
from plain_view import key_view

from toolkit.server.process import RedisServer

Views = dict[bytes, Any]


def _views(nodes: list[RedisServer]) -> Views:
    """Every key of the cluster -> (TYPE, content, PEXPIRETIME), read on its node."""
    out: Views = {}
    for node in nodes:
        c = node.client()
        for key in c.scan_iter(count=1000):
            out[key] = (*key_view(c, key, (7, 0), {}), c.execute_command("PEXPIRETIME", key))
    return out


@pytest.fixture(scope="module")
def sets(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[RedisServer], Path, Path, Views, Views]]:
    """Set A, writes, set B; the cluster (in B's state) stays up."""
    with cluster() as nodes:
        write_with_cli(nodes[0], [["SET", f"k{i}", f"v{i}"] for i in range(600)])
        write_with_cli(nodes[0], [["HSET", f"{{h}}{i}", "f", "1"] for i in range(30)])
        before = _views(nodes)
        a = save_set(nodes, tmp_path_factory.mktemp("a"))
        write_with_cli(
            nodes[0],
            [["DEL", f"k{i}"] for i in range(0, 40)]
            + [["SET", f"new{i}", "x"] for i in range(25)]
            + [["SET", f"k{i}", "changed"] for i in range(100, 130)]
            + [["HSET", f"{{h}}{i}", "g", "2"] for i in range(10)],
        )
        after = _views(nodes)
        b = save_set(nodes, tmp_path_factory.mktemp("b"))
        yield nodes, a, b, before, after


@contextlib.contextmanager
def _config(nodes: list[RedisServer], name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` on ``nodes`` for the block, each node's own value put back
    after (the cluster is shared by the module's tests)."""
    old = [n.client().config_get(name)[name] for n in nodes]
    for n in nodes:
        n.client().config_set(name, value)
    try:
        yield
    finally:
        for n, v in zip(nodes, old, strict=True):
            n.client().config_set(name, v)


def _diff(a: Path | str, b: Path | str, *extra: str) -> tuple[int, dict]:
    run = invoke_cli("diff", a, b, "--json", "--values", "--keys", "--limit", "1000", *extra)
    assert run.exit_code in (0, 1), run.stderr
    return run.exit_code, json.loads(run.stdout)


def _expected(before: Views, after: Views) -> dict[str, set[bytes]]:
    return {
        "removed": set(before) - set(after),
        "added": set(after) - set(before),
        "changed": {k for k in set(before) & set(after) if before[k] != after[k]},
    }


def _found(report: dict) -> dict[str, set[bytes]]:
    out: dict[str, set[bytes]] = {"removed": set(), "added": set(), "changed": set()}
    for k in report["keys"]:
        kind = k["kinds"][0] if k["kinds"][0] in ("removed", "added") else "changed"
        out[kind].add(k["key"].encode())
    return out


def test_two_sets(sets: tuple[list[RedisServer], Path, Path, Views, Views]) -> None:
    _nodes, a, b, before, after = sets
    code, report = _diff(a, b)
    assert code == 1 and report["a"]["kind"] == report["b"]["kind"] == "cluster-set"
    assert report["a"]["keys_read"] == len(before) and report["b"]["keys_read"] == len(after)
    expected = _expected(before, after)
    assert _found(report) == expected
    assert report["keys_differing"] == sum(len(v) for v in expected.values())
    code, report = _diff(a, a)
    assert code == 0 and report["keys_differing"] == 0


def test_a_set_against_the_live_cluster(
    sets: tuple[list[RedisServer], Path, Path, Views, Views],
) -> None:
    """Auto mode reads the primaries' snapshots (all at once, each after the server's own
    repl-diskless-sync-delay: 5 s here); ``--via scan`` reads the keys one by one. Both find
    what the servers showed."""
    nodes, a, b, before, after = sets
    url = f"redis://127.0.0.1:{nodes[1].port}"
    for via in ("auto", "scan"):
        code, report = _diff(a, url, "--via", via)
        assert code == 1 and report["b"]["kind"] == "live"
        assert report["b"]["via"] == ("snapshot" if via == "auto" else "scan")
        assert report["b"]["keys_read"] == len(after)
        assert _found(report) == _expected(before, after)
        code, report = _diff(b, url, "--via", via)
        assert code == 0 and report["keys_differing"] == 0, report["keys"]


def _syncs(node: RedisServer) -> tuple[int, int]:
    """SYNCs the node forked for, and those it held back first (its own log's lines)."""
    log = node.log_path.read_text(errors="replace")
    return log.count("Starting BGSAVE for SYNC"), log.count("Delay next BGSAVE for diskless SYNC")


def test_sync_now_has_every_primary_fork_at_once(
    sets: tuple[list[RedisServer], Path, Path, Views, Views],
) -> None:
    """--sync-now on a cluster: every primary forks for its snapshot without its 5 s
    repl-diskless-sync-delay (its log holds no SYNC back), and keeps its setting."""
    nodes, _a, b, _before, _after = sets
    before = [_syncs(n) for n in nodes]
    code, report = _diff(b, f"redis://127.0.0.1:{nodes[0].port}", "--sync-now")
    assert code == 0 and report["b"]["via"] == "snapshot", report["b"]
    assert [_syncs(n) for n in nodes] == [(started + 1, held) for started, held in before]
    assert [n for n in report["b"]["notes"] if "--sync-now: the server forked at once" in n]
    assert [n.client().config_get("repl-diskless-sync-delay") for n in nodes] == [
        {"repl-diskless-sync-delay": "5"}
    ] * len(nodes)


def test_auto_mode_reads_by_scan_when_a_primary_gives_no_snapshot(
    sets: tuple[list[RedisServer], Path, Path, Views, Views],
) -> None:
    """A primary with repl-diskless-sync no would write its own dump file to serve SYNC: auto
    mode then reads the whole cluster by SCAN, and the report names that primary."""
    nodes, a, _b, before, after = sets
    url = f"redis://127.0.0.1:{nodes[0].port}"
    with _config(nodes[2:3], "repl-diskless-sync", "no"):
        code, report = _diff(a, url)
    assert code == 1 and report["b"]["via"] == "scan"
    notes = " ".join(report["b"]["notes"])
    assert f"127.0.0.1:{nodes[2].port}" in notes and "repl-diskless-sync no" in notes
    assert _found(report) == _expected(before, after)


def test_an_invalid_set_is_refused(
    sets: tuple[list[RedisServer], Path, Path, Views, Views], tmp_path: Path
) -> None:
    _nodes, a, _b, _before, _after = sets
    broken = tmp_path / "set"
    shutil.copytree(a, broken)
    shutil.rmtree(broken / "shard-0")
    run = invoke_cli("diff", broken, a)
    assert run.exit_code == 2 and "not a valid cluster backup set" in run.stderr
    assert "owned by no shard of the set" in run.stderr


def test_the_live_cluster_read_as_its_primaries_snapshots(
    sets: tuple[list[RedisServer], Path, Path, Views, Views],
) -> None:
    """``--via snapshot`` on a cluster node: every primary read by SYNC, as a backup set,
    finds what the servers showed; a primary that refuses SYNC ends the diff (exit 2)."""
    nodes, a, b, before, after = sets
    url = f"redis://127.0.0.1:{nodes[2].port}"
    with _config(nodes, "repl-diskless-sync-delay", "0"):
        code, report = _diff(a, url, "--via", "snapshot")
        assert code == 1 and report["b"]["kind"] == "live" and report["b"]["via"] == "snapshot"
        assert report["b"]["keys_read"] == len(after)
        assert _found(report) == _expected(before, after)
        code, report = _diff(b, url, "--via", "snapshot")
        assert code == 0 and report["keys_differing"] == 0, report["keys"]
        with _config(nodes[1:2], "repl-diskless-sync", "no"):
            run = invoke_cli("diff", a, url, "--via", "snapshot", "--json")
    assert run.exit_code == 2
    assert f"127.0.0.1:{nodes[1].port}" in run.stderr and "repl-diskless-sync no" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_primary_that_refuses_sync_midway_sends_auto_mode_to_scan(
    sets: tuple[list[RedisServer], Path, Path, Views, Views],
) -> None:
    """A user who may not SYNC on one primary (its refusal comes in that primary's own thread,
    while the others wait to send theirs): auto mode reads the cluster by SCAN, naming it; the
    others hang up before their server forks."""
    nodes, a, _b, before, after = sets
    with _config(nodes, "repl-diskless-sync-delay", "5"):  # the server's default
        forks = [n.client().info("stats")["total_forks"] for n in nodes]
        for i, node in enumerate(nodes):
            rules = ["on", ">pw", "~*", "&*", "+@all"] + (["-sync"] if i == 1 else [])
            node.client().execute_command("ACL", "SETUSER", "reader", *rules)
        try:
            code, report = _diff(a, f"redis://reader:pw@127.0.0.1:{nodes[0].port}")
        finally:
            for node in nodes:
                node.client().execute_command("ACL", "DELUSER", "reader")
        assert code == 1 and report["b"]["via"] == "scan"
        notes = " ".join(report["b"]["notes"])
        assert f"127.0.0.1:{nodes[1].port}" in notes and "SYNC refused" in notes, notes
        assert _found(report) == _expected(before, after)
        # The others gave up while their server waited its 5 s to fork: none of them forked.
        assert [n.client().info("stats")["total_forks"] for n in nodes] == forks
    deadline = time.monotonic() + 10  # no replica connection left behind on any primary
    while any(n.client().info("replication")["connected_slaves"] for n in nodes):
        assert time.monotonic() < deadline, "a primary still has rbkit as its replica"
        time.sleep(0.05)


def test_a_full_scratch_disk_sends_auto_mode_to_scan(
    sets: tuple[list[RedisServer], Path, Path, Views, Views], tmp_path: Path
) -> None:
    """--tmpdir on a 64 KiB tmpfs, a cluster holding 2.4 MB of random hex: a primary's
    snapshot does not fit (on one page, not even the primaries' CLUSTER NODES). Auto mode
    reads the cluster by SCAN, the note naming the full disk; --via snapshot ends the diff
    (exit 2) in one line. Nothing is left in the tmpfs and no primary keeps rbkit as its
    replica. (Last in the file: it adds keys, then deletes them.)"""
    nodes, a, _b, _before, _after = sets
    url = f"redis://127.0.0.1:{nodes[0].port}"
    with _config(nodes, "repl-diskless-sync-delay", "0"):
        big = [["SET", f"big{i}", os.urandom(100_000).hex()] for i in range(12)]
        write_with_cli(nodes[0], big)
        try:
            with tmpfs(tmp_path / "small", 64 * 1024) as small:
                code, report = _diff(a, url, "--tmpdir", str(small))
                assert code == 1 and report["b"]["via"] == "scan", report["b"]["notes"]
                notes = " ".join(report["b"]["notes"])
                assert "no room" in notes and "No space left" in notes, notes
                assert str(small) in notes, notes
                assert {f"big{i}".encode() for i in range(12)} <= _found(report)["added"]
                assert os.listdir(small) == []
                run = invoke_cli("diff", a, url, "--via", "snapshot", "--tmpdir", small)
                assert run.exit_code == 2, run.output
                lines = run.stderr.strip().splitlines()
                assert len(lines) == 1 and "no room" in lines[0], lines
                assert os.listdir(small) == []
            # One page: not even the second primary's CLUSTER NODES fits.
            with tmpfs(tmp_path / "tiny", 4096) as tiny:
                code, report = _diff(a, url, "--tmpdir", str(tiny))
                assert code == 1 and report["b"]["via"] == "scan", report["b"]["notes"]
                notes = " ".join(report["b"]["notes"])
                assert "no room" in notes and "CLUSTER NODES" in notes, notes
                assert os.listdir(tiny) == []
        finally:
            write_with_cli(nodes[0], [["DEL", f"big{i}"] for i in range(12)])
    deadline = time.monotonic() + 10
    while any(n.client().info("replication")["connected_slaves"] for n in nodes):
        assert time.monotonic() < deadline, "a primary still has rbkit as its replica"
        time.sleep(0.05)
