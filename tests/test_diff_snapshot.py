"""A live server read as its replication snapshot (SYNC), against real servers: the same
differences as the SCAN reader finds (the oracle reads the server with plain commands), no
per-key commands, the server's own dump file never written, and the fallbacks said."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import binary, invoke_cli
from diff_support import (
    apply_changes,
    expected_kinds,
    found_kinds,
    save_copy,
    snapshot,
    url_of,
    write_dataset,
)
from fault_support import tmpfs

from toolkit.diff.compute import DiffError, compute_diff
from toolkit.server.connect import ConnectOptions, Server
from toolkit.server.process import RedisServer, running_server
from toolkit.stage.live_snapshot import read_snapshot

# The default delay makes each snapshot wait 5 s for more replicas: the tests do not.
FAST = {"repl-diskless-sync-delay": "0"}


@pytest.mark.parametrize("version", ["6.2", "7.0", "8.2"])
def test_snapshot_finds_what_the_server_holds(version: str, tmp_path: Path) -> None:
    config = {**FAST, "repl-diskless-sync": "yes"}  # 6.2's default is no
    with running_server(binary(version), config=config) as server:
        write_dataset(server)
        before = snapshot(server)
        a = save_copy(server, tmp_path / "a.rdb")
        apply_changes(server)
        after = snapshot(server)
        c = server.client()
        c.config_resetstat()
        report = compute_diff(str(a), url_of(server), values=True, limit=1000)
        assert report.b.via == "snapshot" and report.b.kind == "live"
        assert found_kinds(report) == expected_kinds(before, after, values=True)
        stats = c.info("commandstats")
        assert stats["cmdstat_sync"]["calls"] == 1
        per_key = ("scan", "dump", "type", "pttl", "keys")
        assert not [s for s in per_key if f"cmdstat_{s}" in stats]
        assert report.values_reread == 0  # one moment: nothing to read again
        # The child that streamed it is gone: the server saves at once afterwards.
        assert c.bgsave()


def test_scan_when_the_server_would_write_its_dump_file(tmp_path: Path) -> None:
    """repl-diskless-sync no: serving SYNC would replace the dump file in the server's dir.
    auto reads by SCAN and says why; --via snapshot is refused; the file is untouched."""
    with running_server(binary("7.0"), config={"repl-diskless-sync": "no"}) as server:
        write_dataset(server)
        c = server.client()
        a = save_copy(server, tmp_path / "a.rdb")
        dump = server.directory / "dump.rdb"
        kept = dump.read_bytes()
        c.set("after the save", 1)
        report = compute_diff(str(a), url_of(server))
        assert report.b.via == "scan"
        assert any("repl-diskless-sync no" in n for n in report.b.notes)
        with pytest.raises(DiffError, match="not read by SYNC: it has repl-diskless-sync no"):
            compute_diff(str(a), url_of(server), via="snapshot")
        assert dump.read_bytes() == kept
        assert "cmdstat_sync" not in c.info("commandstats")


def test_scan_when_the_user_may_not_sync(tmp_path: Path) -> None:
    """An ACL user without SYNC (or CONFIG) is read by SCAN, and the report says why."""
    with running_server(binary("7.0"), config=FAST) as server:
        write_dataset(server)
        a = save_copy(server, tmp_path / "a.rdb")
        c = server.client()
        c.execute_command(
            "ACL",
            "SETUSER",
            "reader",
            "on",
            ">pw",
            "~*",
            "+@read",
            "+@connection",
            "+info",
            "+time",
        )
        url = f"redis://reader:pw@127.0.0.1:{server.port}"
        report = compute_diff(str(a), url)
        assert report.same and report.b.via == "scan"
        assert any("CONFIG GET is not allowed" in n for n in report.b.notes)
        # CONFIG allowed but not SYNC: the server's refusal is the reason.
        c.execute_command("ACL", "SETUSER", "reader", "+config|get")
        report = compute_diff(str(a), url)
        assert report.same and report.b.via == "scan"
        assert any("SYNC refused" in n and "NOPERM" in n for n in report.b.notes), report.b.notes


def test_cli_says_how_the_server_was_read(tmp_path: Path) -> None:
    with running_server(binary("7.0"), config=FAST) as server:
        write_dataset(server)
        a = save_copy(server, tmp_path / "a.rdb")
        server.client().set("new key", "x")
        run = invoke_cli("diff", a, url_of(server), "--json")
        assert run.exit_code == 1, run.output
        doc = json.loads(run.stdout)
        assert doc["b"]["via"] == "snapshot" and doc["a"]["via"] is None
        run = invoke_cli("diff", a, url_of(server))
        assert "read by its replication snapshot (SYNC)" in run.stdout
        run = invoke_cli("diff", a, url_of(server), "--via", "scan", "--json")
        assert json.loads(run.stdout)["b"]["via"] == "scan"
        # The server's own wait for other replicas is named, as it set it.
        assert not [n for n in doc["b"]["notes"] if "repl-diskless-sync-delay" in n]
        server.client().config_set("repl-diskless-sync-delay", "1")
        run = invoke_cli("diff", a, url_of(server), "--json")
        notes = json.loads(run.stdout)["b"]["notes"]
        assert [n for n in notes if "waited 1 s before it forked" in n], notes
        assert server.client().config_get("repl-diskless-sync-delay") == {
            "repl-diskless-sync-delay": "1"
        }


# The server's own log line when it holds a SYNC back for its repl-diskless-sync-delay.
DELAYED = "Delay next BGSAVE for diskless SYNC"


def _syncs(server: RedisServer) -> tuple[int, int]:
    """How many SYNCs the server forked for, and how many of them it held back first."""
    log = server.log_path.read_text(errors="replace")
    return log.count("Starting BGSAVE for SYNC"), log.count(DELAYED)


@pytest.mark.parametrize("version", ["7.0", "9.1"])
def test_sync_now_forks_at_once_and_puts_the_delay_back(version: str, tmp_path: Path) -> None:
    """--sync-now: the server forks for rbkit's SYNC without its repl-diskless-sync-delay
    (its log has no held-back SYNC), and the setting is back as it was after."""
    with running_server(binary(version), config={"repl-diskless-sync-delay": "1"}) as server:
        write_dataset(server)
        a = save_copy(server, tmp_path / "a.rdb")
        c = server.client()
        c.set("new key", "x")
        run = invoke_cli("diff", a, url_of(server), "--json")  # the control: it waits
        assert json.loads(run.stdout)["b"]["via"] == "snapshot"
        assert _syncs(server) == (1, 1)
        run = invoke_cli("diff", a, url_of(server), "--sync-now", "--json")
        assert run.exit_code == 1, run.output
        doc = json.loads(run.stdout)
        assert doc["b"]["via"] == "snapshot"
        assert [k["key"] for k in doc["keys"]] == ["new key"]
        assert _syncs(server) == (2, 1)
        assert [n for n in doc["b"]["notes"] if "--sync-now: the server forked at once" in n]
        assert not [n for n in doc["b"]["notes"] if "waited" in n]
        assert c.config_get("repl-diskless-sync-delay") == {"repl-diskless-sync-delay": "1"}


def test_sync_now_without_config_set_waits_and_says_why(tmp_path: Path) -> None:
    """A user who may not CONFIG SET still gets the snapshot: the server waits its delay,
    as without --sync-now, and the report says why."""
    with running_server(binary("7.0"), config={"repl-diskless-sync-delay": "1"}) as server:
        write_dataset(server)
        a = save_copy(server, tmp_path / "a.rdb")
        c = server.client()
        c.execute_command("ACL", "SETUSER", "ops", "on", ">pw", "~*", "+@all", "-config|set")
        url = f"redis://ops:pw@127.0.0.1:{server.port}"
        report = compute_diff(str(a), url, connect=ConnectOptions(sync_now=True))
        assert report.same and report.b.via == "snapshot"
        assert _syncs(server) == (1, 1)
        assert [n for n in report.b.notes if "--sync-now: CONFIG SET refused" in n], report.b
        assert [n for n in report.b.notes if "waited 1 s before it forked" in n]
        assert c.config_get("repl-diskless-sync-delay") == {"repl-diskless-sync-delay": "1"}


def test_sync_now_reads_a_restore_target_back_at_once() -> None:
    """The restore's read-back of its target (a snapshot from SNAPSHOT_MIN_KEYS keys on)
    takes the same flag through the target's Server."""
    with running_server(binary("7.0"), config={"repl-diskless-sync-delay": "1"}) as server:
        write_dataset(server)
        url = url_of(server)
        live = read_snapshot(Server.parse(url, ConnectOptions(sync_now=True)))
        held = server.client().info("keyspace")
        assert live.via == "snapshot" and live.keys == sum(d["keys"] for d in held.values())
        assert _syncs(server) == (1, 0)
        assert server.client().config_get("repl-diskless-sync-delay") == {
            "repl-diskless-sync-delay": "1"
        }


# -- the snapshot taken beside the other side ------------------------------------------------


def _scratch() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("rbkit-snapshot-*"))


def _let_go(server: RedisServer, before: set[Path]) -> None:
    """Within 10 s: rbkit's snapshot folder is gone and the server has no replica left."""
    c = server.client()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        replicas = c.info("replication")["connected_slaves"]
        if not (_scratch() - before) and replicas == 0:
            break
        time.sleep(0.05)
    assert not _scratch() - before
    assert c.info("replication")["connected_slaves"] == 0


def test_a_damaged_other_side_ends_the_snapshot_under_way(tmp_path: Path) -> None:
    """B's snapshot is taken in a second process while A is checked; A is damaged: the diff
    ends (exit 2) and so does B's snapshot, its scratch folder removed, while the server
    still waits its default 5 s to fork."""
    with running_server(binary("7.0")) as server:
        write_dataset(server)
        a = save_copy(server, tmp_path / "a.rdb")
        a.write_bytes(a.read_bytes()[:-20])  # cut: the check refuses it
        before = _scratch()
        with pytest.raises(DiffError, match="not a valid backup"):
            compute_diff(str(a), url_of(server))
        _let_go(server, before)


def test_killed_while_the_server_sends_its_snapshot(tmp_path: Path) -> None:
    """rbkit killed (SIGKILL) while B's snapshot is under way in its second process: the
    lifeline watcher ends that process and removes the scratch folder."""
    with running_server(binary("7.0")) as server:  # its default 5 s delay: time to kill
        write_dataset(server)
        a = save_copy(server, tmp_path / "a.rdb")
        before = _scratch()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        diff = subprocess.Popen(
            [sys.executable, "-m", "toolkit", "diff", os.fspath(a), url_of(server), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            c = server.client()
            while c.info("replication")["connected_slaves"] == 0:
                assert time.monotonic() < deadline, "the snapshot never began"
                assert diff.poll() is None, "rbkit ended before the snapshot began"
                time.sleep(0.02)
            assert _scratch() - before
            os.kill(diff.pid, signal.SIGKILL)
        finally:
            diff.kill()
            diff.wait()
        _let_go(server, before)


# -- a scratch disk too small for the snapshot -------------------------------------------------


def _big_values(server: RedisServer) -> None:
    """About 2 MB the server cannot compress: a snapshot larger than the small tmpfs."""
    c = server.client()
    for i in range(20):
        c.set(f"big:{i}", os.urandom(100_000))


def test_a_full_scratch_disk_is_said_and_left_empty(tmp_path: Path) -> None:
    """--tmpdir on a 512 KiB tmpfs: the snapshot does not fit. Auto mode reads the server by
    SCAN instead (the note names the directory and the full disk); --via snapshot ends the
    diff (exit 2) with that line. The partial snapshot is removed either way, and the server
    side found is what the server holds."""
    with running_server(binary("7.0"), config=FAST) as server:
        write_dataset(server)
        _big_values(server)
        before = snapshot(server)
        a = save_copy(server, tmp_path / "a.rdb")
        apply_changes(server)
        after = snapshot(server)
        with tmpfs(tmp_path / "small", 512 * 1024) as small:
            # B in the second process, A in this one: both paths hit the full disk.
            for a_spec, b_spec, label, kinds in (
                (str(a), url_of(server), "b", expected_kinds(before, after, values=False)),
                (url_of(server), str(a), "a", expected_kinds(after, before, values=False)),
            ):
                report = compute_diff(a_spec, b_spec, tmpdir=small, limit=1000)
                side = getattr(report, label)
                assert side.via == "scan", side.notes
                notes = [n for n in side.notes if "no room" in n]
                assert notes and str(small) in notes[0] and "No space left" in notes[0], side.notes
                assert found_kinds(report) == kinds
                assert os.listdir(small) == []
            run = invoke_cli("diff", a, url_of(server), "--via", "snapshot", "--tmpdir", small)
            assert run.exit_code == 2, run.output
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and "no room" in lines[0] and str(small) in lines[0], lines
            assert os.listdir(small) == []
        # The server was left as it was: no replica, and it saves at once.
        assert server.client().info("replication")["connected_slaves"] == 0


def test_tmpdir_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    a = tmp_path / "a.rdb"
    a.write_bytes(b"")
    run = invoke_cli("diff", a, a, "--tmpdir", tmp_path / "nowhere")
    assert run.exit_code == 2, run.output
    assert "nowhere: the temporary directory does not exist" in run.stderr
