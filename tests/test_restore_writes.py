"""No acknowledged write is lost, and what is installed is what was checked (issue 9).

A client writes ``w:<n>`` keys to the target all through each restore and records every write
the server acknowledged. After the restore (or its rollback, or a refusal) each of those keys
must be on the final server or in a data file rbkit kept: read by loading the file into a
scratch redis-server, never by rbkit's own parser.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
import redis
from restore_support import (
    AOF,
    JOURNAL,
    OLD_KEYS,
    RDB,
    AckWriter,
    Target,
    alive_counts,
    copy_backup,
    file_keys,
    kept_keys,
    keys_of,
    make_target,
    rbkit,
    scratch_servers,
)

__all__ = ["make_target"]  # the fixture

BACKUP = RDB / "redis-7.0-all-types.rdb"


def live_keys(t: Target) -> set[bytes]:
    return t.keys(0, "w:*")


def assert_nothing_lost(t: Target, acked: list[bytes]) -> None:
    """Every acknowledged write is on the final server or in a kept file."""
    assert acked, "the writer never got a write through"
    missing = set(acked) - live_keys(t) - kept_keys(t)
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:3]}"


def old_target(make_target, **kw) -> Target:
    t = make_target("7.0", fill=True, **kw)
    t.save_now()
    return t


# -- the old server keeps its writes -----------------------------------------------------------


@pytest.mark.parametrize("recover", ["rollback", "rerun"])
def test_killed_as_the_stop_begins_the_server_keeps_serving(make_target, recover: str) -> None:
    """rbkit is SIGKILLed as its stop step begins: the server never went down and clients go
    on writing (it has no save points: the writes are in memory only). The recovery must
    leave it running (--rollback) or stop it with those writes saved (a rerun)."""
    t = old_target(make_target)
    pid = t.pid()
    writer = AckWriter(t)
    writer.start()
    assert writer.first.wait(10)
    killed = rbkit("restore", BACKUP, "--config", t.conf, "--yes", kill_after="stop:begin")
    assert killed.code == -9, killed.text
    assert t.up() and t.pid() == pid
    if recover == "rollback":
        run = rbkit("restore", "--rollback", t.data, "--json")
        assert run.code == 0, run.text
        report = run.json()
        assert report["verified"] is True and "never stopped" in report["reason"]
        assert t.pid() == pid, "the rollback must not stop a server that never went down"
        acked = writer.stop()
        assert set(acked) <= live_keys(t)
        assert not t.rollback_dirs(), "nothing was moved: no rollback folder"
    else:
        run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json")
        assert run.code == 0, run.text
        report = run.json()
        assert report["outcome"] == "restored"
        assert any("never stopped" in n for n in report["notes"])
        acked = writer.stop()
        assert_nothing_lost(t, acked)
        assert report["writes"]["during_restore"] > 0
        [note] = [n for n in report["notes"] if "writes reached the target" in n]
        assert "rbkit-rollback-" in note and "dump.rdb" in note
    assert not (t.data / JOURNAL).exists()


def test_writes_during_a_restore_are_kept_or_restored(make_target) -> None:
    """A client writes all through a restore: what the old server acknowledged is in the kept
    dump.rdb (SHUTDOWN SAVE), what the restored one acknowledged after its verification is
    on it; writes in between waited (CLIENT PAUSE WRITE) and the verification matched."""
    t = old_target(make_target)
    writer = AckWriter(t)
    writer.start()
    assert writer.first.wait(10)
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    report = run.json()
    after = len(writer.acked) + 50
    while len(writer.acked) < after:  # the restored server takes writes again
        assert writer.is_alive()
        time.sleep(0.01)
    acked = writer.stop()
    assert report["outcome"] == "restored" and report["verification"]["verified"]
    values = report["verification"]["values"]
    assert values["ok"] and values["compared"] > 0
    assert_nothing_lost(t, acked)
    kept = kept_keys(t)
    assert kept and live_keys(t), "writes on both sides of the restore"
    assert 0 < report["writes"]["during_restore"] <= len(kept)
    # The restored keyspace is the backup's, plus the writes made after it was verified.
    counts = t.counts()
    assert counts[0] == alive_counts(BACKUP)[0] + len(live_keys(t))


def test_connected_clients_are_named_in_the_preflight(make_target) -> None:
    t = old_target(make_target)
    idle = [t.client() for _ in range(3)]
    for c in idle:
        c.ping()
    run = rbkit("restore", BACKUP, "--config", t.conf, "--dry-run", "--json")
    for c in idle:
        c.close()
    assert run.code == 0, run.text
    assert any(n.startswith("3 other clients are connected") for n in run.json()["notes"])


# -- the restored server, once it has taken writes -----------------------------------------


def test_rollback_refuses_to_discard_writes_of_the_restored_server(make_target) -> None:
    """rbkit dies after the verification, before it lets writes through: the restored server
    refuses writes (none can be acknowledged, so none lost). An operator lets them through
    and clients write; --rollback then refuses and leaves it running; --discard-writes saves
    those writes first."""
    t = old_target(make_target)
    killed = rbkit("restore", BACKUP, "--config", t.conf, "--yes", kill_after="verify")
    assert killed.code == -9, killed.text
    c = t.client()
    with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
        c.set("w:refused", 1)
    c.config_set("min-replicas-to-write", 0)
    c.execute_command("CLIENT", "UNPAUSE")
    for i in range(25):
        c.set(f"w:{i}", i)
    c.close()
    pid = t.pid()
    run = rbkit("restore", "--rollback", t.data, "--json")
    assert run.code == 1, run.text
    report = run.json()
    assert report["refused"] is True and report["verified"] is False
    assert "accepted 25 writes from clients" in report["reason"]
    assert "--discard-writes" in report["reason"]
    assert t.pid() == pid and len(live_keys(t)) == 25
    assert (t.data / JOURNAL).is_file()
    run = rbkit("restore", "--rollback", t.data, "--discard-writes")
    assert run.code == 0, run.text
    assert run.out.startswith("rollback: done, verified")
    assert not live_keys(t) and len(t.keys(0, "old:*")) == OLD_KEYS
    [rejected] = list(t.data.glob("rbkit-rollback-*/rejected/dump.rdb"))
    assert {f"w:{i}".encode() for i in range(25)} <= keys_of(rejected)


def test_verification_mismatch_rolls_back_a_server_without_writes(make_target) -> None:
    """--start-cmd brings up a server from another config (it comes up without the restored
    keys): the verification fails, nobody wrote to it, so the rollback may stop it."""
    t = old_target(make_target)
    (t.data / "other.rdb").write_bytes((t.data / "dump.rdb").read_bytes())
    other = t.write_config(t.root / "other.conf", dbfilename="other.rdb")
    start = " ".join(t.start_command(other))
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", "--start-cmd", start)
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "rolled-back" and report["rollback"]["verified"]
    assert report["writes"]["before_pause"] == 0
    stop = report["rollback"]["steps"][0]
    assert stop["name"] == "stop" and stop["detail"].startswith("SHUTDOWN NOSAVE")


# -- the bytes installed are the bytes checked ---------------------------------------------


def test_backup_replaced_after_the_check_is_not_installed(make_target, tmp_path: Path) -> None:
    """The backup file is overwritten with another valid backup once rbkit has its copy: the
    target gets the original, the report gives the original's sha256."""
    t = old_target(make_target)
    backup = copy_backup(BACKUP, tmp_path / "backups")
    digest = hashlib.sha256(backup.read_bytes()).hexdigest()
    other = RDB / "redis-7.0-strings-only.rdb"
    run = rbkit(
        "restore", backup, "--config", t.conf, "--yes", "--json", kill_after=f"replace:{other}"
    )
    assert run.code == 0, run.text
    assert backup.read_bytes() == other.read_bytes()  # it was replaced
    report = run.json()
    assert report["outcome"] == "restored"
    assert list(report["sha256"].values()) == [digest]
    assert (t.data / "dump.rdb").read_bytes() == BACKUP.read_bytes()
    assert t.counts() == alive_counts(BACKUP)
    journal = next(t.data.glob(f"rbkit-rollback-*/{JOURNAL}")).read_text().splitlines()
    assert json.loads(journal[0])["plan"]["sha256"] == report["sha256"]


def test_private_copy_changed_before_the_install_is_rolled_back(make_target) -> None:
    t = old_target(make_target)
    before = t.digest()
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", kill_after="tamper")
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "rolled-back"
    assert "changed after it was checked" in report["reason"]
    assert t.digest() == before
    assert file_keys(t.data / "dump.rdb") == OLD_KEYS + 1


# -- nothing left behind -------------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    ["toolkit.stage.drill.read_counts", "toolkit.restore.procedure._gate"],
    ids=["in-the-stage", "in-the-gate-while-the-scratch-server-loads"],
)
def test_killed_during_the_stage_leaves_no_scratch_server(make_target, at: str) -> None:
    """Killed once the scratch server has loaded, or while it loads an RDB beside the gate:
    the lifeline watcher kills it and removes its folder and the private copy."""
    t = old_target(make_target)
    before = t.digest()
    stages_before = set(Path("/tmp").glob("rbkit-stage-*"))
    killed = rbkit("restore", BACKUP, "--config", t.conf, "--yes", kill_after=f"call:{at}")
    assert killed.code == -9, killed.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the lifeline watcher cleans up behind the kill
        left = set(Path("/tmp").glob("rbkit-stage-*")) - stages_before
        if not left and not list(t.data.glob(".rbkit-*")):
            break
        time.sleep(0.05)
    assert not set(Path("/tmp").glob("rbkit-stage-*")) - stages_before
    assert not list(t.data.glob(".rbkit-*"))
    assert not scratch_servers()
    assert t.digest() == before and not t.rollback_dirs()


def test_the_scratch_server_loads_an_rdb_while_the_gate_checks_it(make_target) -> None:
    """An RDB's scratch server is started on the private copy before the gate has its
    verdict (the stage's copy says so); an AOF's only after it. Neither is left running."""
    t = old_target(make_target)
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    copy = {s["name"]: s for s in run.json()["stage"]["steps"]}["copy"]
    assert "while the gate checked it" in copy["detail"]
    assert t.keys(0, "*") == keys_of(BACKUP)  # db 0 as a plain server loads the file
    aof = AOF / "redis-6.2-plain.aof"
    run = rbkit("restore", aof, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    copy = {s["name"]: s for s in run.json()["stage"]["steps"]}["copy"]
    assert "while the gate checked it" not in copy["detail"]
    assert not scratch_servers()


def test_refused_restores_leave_no_rollback_folder(make_target) -> None:
    """A save that fails refuses the restore before anything moves: no folder, no journal."""
    t = old_target(make_target)
    (t.data / f"temp-{t.pid()}.rdb").mkdir()  # SHUTDOWN SAVE cannot write its temp file
    for _ in range(2):
        run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json")
        assert run.code == 1, run.text
        report = run.json()
        assert report["outcome"] == "refused"
        assert "still running with its data" in report["reason"]
    assert not t.rollback_dirs() and not (t.data / JOURNAL).exists()
    assert t.up()


def test_force_on_a_manifest_with_a_path_is_refused(make_target) -> None:
    t = make_target("7.0", fill=True, appendonly=True)
    before = t.digest()
    backup = AOF / "damaged" / "manifest-dotdot" / "appendonlydir"
    run = rbkit("restore", backup, "--config", t.conf, "--yes", "--force", "--json")
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "refused"
    assert "is a path, not a bare file name" in report["reason"]
    assert t.digest() == before


# -- one mode at a time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--stage-only", "--to", "URL", "--yes"], ("--stage-only", "--to")),
        (["--to", "URL", "--url", "URL"], ("--url", "--to")),
        (["--stage-only", "--url", "URL"], ("--url", "--stage-only")),
        (["--stage-only", "--stop-cmd", "true"], ("--stop-cmd", "--stage-only")),
        (["--to", "URL", "--start-cmd", "true"], ("--start-cmd", "--to")),
        (["--cluster"], ("--cluster", "--to")),
    ],
)
def test_modes_are_exclusive(make_target, flags: list[str], named: tuple[str, str]) -> None:
    t = old_target(make_target)
    before = t.digest()
    args = [t.url if f == "URL" else f for f in flags]
    run = rbkit("restore", BACKUP, *args)
    assert run.code == 2, run.text
    line = run.err.strip().splitlines()[-1]
    assert line.startswith("error: ") and all(n in line for n in named), line
    assert t.digest() == before


def test_rollback_takes_no_backup(tmp_path: Path) -> None:
    run = rbkit("restore", BACKUP, "--rollback", tmp_path)
    assert run.code == 2
    assert "--rollback" in run.err and "BACKUP" in run.err
