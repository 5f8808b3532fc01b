"""A network restore that can resume (``rbkit restore BACKUP --to URL --resume``).

``rbkit`` runs as a subprocess with a fault injected from outside (tests/kill_after.py): a
SIGKILL once its journal records the 2nd acknowledged batch (by then the 3rd batch has been
sent, unanswered), or the target closing its connections there. The resumed restore must
finish without failing on the keys the first run wrote, and the target must then hold,
key by key, what a reference server that loaded the same backup holds. The refusals: an
unfinished journal without --resume, a changed backup, a restarted target (new run_id),
--resume with nothing to resume.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import signal
from pathlib import Path

import pytest
from conftest import binary
from plain_view import assert_same_keyspace, reference
from restore_support import rbkit
from test_network_restore import _owner, cluster, keys_digest, target, url_of

from toolkit.server.process import running_server

KEYS_DB0 = 5200  # six batches of 1000 keys (load.BATCH_KEYS) in all
KEYS_DB2 = 700
TOTAL = KEYS_DB0 + KEYS_DB2


def make_backup(directory: Path, extra: int = 0, version: str = "7.0") -> Path:
    """An RDB of TOTAL (+ ``extra``) keys of every simple type, some with TTLs, in dbs 0 and
    2, saved by a server of ``version``."""
    directory.mkdir()
    with running_server(binary(version), directory=directory) as server:
        c = server.client()
        later = int(c.time()[0]) * 1000 + 3600_000
        pipe = c.pipeline(transaction=False)
        for i in range(KEYS_DB0 + extra):
            kind = i % 5
            key = f"k:{i}"
            if kind == 0:
                pipe.set(key, f"value {i}" * (i % 7 + 1))
            elif kind == 1:
                pipe.rpush(key, *range(i % 11 + 1))
            elif kind == 2:
                pipe.hset(key, mapping={f"f{j}": j for j in range(i % 5 + 1)})
            elif kind == 3:
                pipe.sadd(key, *(f"m{j}" for j in range(i % 9 + 1)))
            else:
                pipe.zadd(key, {f"z{j}": j / 3 for j in range(i % 4 + 1)})
            if i % 13 == 0:
                pipe.pexpireat(key, later + i)
        pipe.execute()
        c2 = server.client(2)
        pipe = c2.pipeline(transaction=False)
        for i in range(KEYS_DB2):
            pipe.set(f"other:{i}", i)
        pipe.execute()
        c.save()
    return directory / "dump.rdb"


def run(backup: Path, url: str, *args: str, kill_after: str | None = None) -> tuple[int, dict]:
    done = rbkit("restore", backup, "--to", url, "--yes", "--json", *args, kill_after=kill_after)
    return done.code, (json.loads(done.out) if done.out.strip() else {})


def journals(state_dir: Path) -> list[Path]:
    return sorted(state_dir.glob("rbkit/network-restores/*.journal"))


# (the backup's server, the target): payloads into 7.0 and 8.2, plain commands (an RDB 12
# into 7.0: the unanswered batch is rebuilt with DEL first, not appended to).
CASES = [("7.0", "7.0"), ("7.0", "8.2"), ("8.2", "7.0")]


@pytest.mark.parametrize(("made_by", "version"), CASES, ids=[f"{a}->{b}" for a, b in CASES])
def test_killed_halfway_then_resumed_holds_the_whole_backup(
    tmp_path: Path, state_dir: Path, made_by: str, version: str
) -> None:
    backup = make_backup(tmp_path / "backup", version=made_by)
    with target(version) as server:
        url = url_of(server)
        code, report = run(backup, url, kill_after="acked:2")
        assert code == -signal.SIGKILL and report == {}
        written = server.client().dbsize() + server.client(2).dbsize()
        assert 0 < written < TOTAL
        [journal] = journals(state_dir)
        text = journal.read_text()
        assert "127.0.0.1" in text and '"acked":' in text

        # Without --resume: stopped, with the reason and the two choices; nothing written.
        before = keys_digest(server)
        code, report = run(backup, url)
        assert code == 1 and report["outcome"] == "refused"
        [reason] = report["reasons"]
        assert f"left its journal at {journal}" in reason
        assert "pass --resume to continue it, or --restart to discard the journal" in reason
        assert "2,000 keys acknowledged" in reason or "2000 keys acknowledged" in reason
        assert keys_digest(server) == before

        code, report = run(backup, url, "--resume")
        assert code == 0, report["reasons"]
        assert report["outcome"] == "verified"
        assert report["path"] == ("commands" if made_by > version else "payload")
        j = report["journal"]
        assert j["resumed"] and j["keys_before"] == 2000 and j["walked_before"] == 2000
        assert j["rewritten"] == 1000  # the 3rd batch: sent, never answered
        assert not j["kept"] and not journal.exists()
        restored = report["restored"]
        assert restored["resumed_keys"] == 2000 and restored["keys"] == TOTAL
        # The verification read back every key of the backup, not just the resumed part.
        assert report["verification"]["mode"] == "keyspace"
        assert report["verification"]["checked"] == TOTAL
        with reference(backup, made_by) as ref:
            assert assert_same_keyspace(server, ref) == TOTAL


def test_a_lost_connection_keeps_the_journal_and_resume_finishes(tmp_path: Path) -> None:
    backup = make_backup(tmp_path / "backup")
    with target("7.0") as server:
        url = url_of(server)
        code, report = run(backup, url, kill_after="drop:3")
        assert code == 1 and report["outcome"] == "failed"
        assert "connection" in report["restored"]["stopped"]
        assert report["journal"]["kept"] is True
        kept = Path(report["journal"]["path"])
        assert kept.is_file()
        # The batch sent before the connections went may have been answered already.
        acked = [json.loads(line) for line in kept.read_text().splitlines() if '"acked"' in line]
        assert acked[-1]["acked"] in (3000, 4000)
        done = rbkit("restore", backup, "--to", url, "--yes")
        assert done.code == 1 and "--resume" in done.out
        code, report = run(backup, url, "--resume")
        assert code == 0, report["reasons"]
        assert report["journal"]["keys_before"] == acked[-1]["acked"] and not kept.exists()
        with reference(backup, "7.0") as ref:
            assert assert_same_keyspace(server, ref) == TOTAL


def test_resume_refuses_a_changed_backup_and_restart_starts_over(tmp_path: Path) -> None:
    backup = make_backup(tmp_path / "a")
    other = make_backup(tmp_path / "b", extra=10)
    path = tmp_path / "dump.rdb"
    shutil.copyfile(backup, path)
    with target("7.0") as server:
        url = url_of(server)
        code, _ = run(path, url, kill_after="acked:2")
        assert code == -signal.SIGKILL
        shutil.copyfile(other, path)
        before = keys_digest(server)
        code, report = run(path, url, "--resume")
        assert code == 1 and report["outcome"] == "refused"
        [reason] = report["reasons"]
        assert reason.startswith("the backup changed since the interrupted restore: its sha256")
        assert "--restart discards that journal" in reason
        code, report = run(path, url)  # nor without --resume
        assert code == 1 and "--resume to continue it, or --restart" in report["reasons"][0]
        assert keys_digest(server) == before
        code, report = run(path, url, "--restart", "--replace")
        assert code == 0, report["reasons"]
        assert any(n.startswith("--restart: the journal") for n in report["notes"])
        assert report["verification"]["verified"]
        with reference(other, "7.0") as ref:
            assert assert_same_keyspace(server, ref) == TOTAL + 10


def test_resume_refuses_another_server_and_nothing_to_resume(tmp_path: Path) -> None:
    backup = make_backup(tmp_path / "backup")
    journal = tmp_path / "my.journal"
    with target("7.0") as server:
        url = url_of(server)
        code, report = run(backup, url, "--resume")
        assert code == 1 and report["reasons"][0].startswith("nothing to resume: no journal")
        code, _ = run(backup, url, "--journal", str(journal), kill_after="acked:1")
        assert code == -signal.SIGKILL and journal.is_file()
        assert "password" not in journal.read_text()
        # While another process holds the journal (a restore running now): refused.
        with open(journal, "rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            code, report = run(backup, url, "--resume", "--journal", str(journal))
        assert code == 1 and report["reasons"] == [
            f"a restore of this backup into {url} is running now (another rbkit holds its "
            f"journal {journal}): let it finish, or stop it and pass --resume"
        ]
        server.stop(save=True)  # the same address, a new process: a new run_id
        server.start()
        before = keys_digest(server)
        code, report = run(backup, url, "--resume", "--journal", str(journal))
        assert code == 1 and report["outcome"] == "refused"
        [reason] = report["reasons"]
        assert reason.startswith(f"{url} is not the server the interrupted restore wrote to")
        assert "its run_id is" in reason and "--restart" in reason
        assert keys_digest(server) == before
        code, report = run(backup, url, "--resume", "--restart")
        assert code == 2 and "cannot be used together" in report["error"]


def test_a_password_never_reaches_the_journal(tmp_path: Path) -> None:
    backup = make_backup(tmp_path / "backup")
    journal = tmp_path / "j.journal"
    with target("7.0") as server:
        server.client().config_set("requirepass", "s3cret-pw")  # after start: the helper waits
        url = f"redis://:s3cret-pw@127.0.0.1:{server.port}"
        code, _ = run(backup, url, "--journal", str(journal), kill_after="acked:1")
        assert code == -signal.SIGKILL
        text = journal.read_text()
        assert "s3cret" not in text and f"127.0.0.1:{server.port}" in text
        code, report = run(backup, url, "--journal", str(journal), "--resume")
        assert code == 0, report["reasons"]
        assert "s3cret" not in json.dumps(report)
        server.client(password="s3cret-pw").config_set("requirepass", "")  # so it can stop


def test_a_cluster_restore_resumes_too(tmp_path: Path) -> None:
    """Into a 3-primary cluster (db 2 left out by --force): killed, resumed, every key on the
    primary of its slot, read back key by key (the verification asks for each key)."""
    backup = make_backup(tmp_path / "backup")
    with cluster() as nodes:
        url = url_of(nodes[0])
        args = ("--cluster", "--force")
        code, _ = run(backup, url, *args, kill_after="acked:2")
        assert code == -signal.SIGKILL
        assert 0 < sum(n.client().dbsize() for n in nodes) < KEYS_DB0
        code, report = run(backup, url, *args)
        assert code == 1 and "--resume to continue it" in report["reasons"][0]
        code, report = run(backup, url, *args, "--resume")
        assert code == 0, report["reasons"]
        assert report["journal"]["keys_before"] == 2000
        assert report["verification"]["mode"] == "keys"
        assert report["verification"]["checked"] == KEYS_DB0
        with reference(backup, "7.0") as ref:
            owner = _owner(nodes)
            compared = assert_same_keyspace(nodes[0], ref, client_of=owner, skip_dbs=frozenset({2}))
            assert compared == KEYS_DB0 == sum(n.client().dbsize() for n in nodes)


def test_an_unreadable_journal_is_refused_and_restart_discards_it(tmp_path: Path) -> None:
    backup = make_backup(tmp_path / "backup")
    journal = tmp_path / "torn.journal"
    journal.write_bytes(b'{"format": "rbkit.netw')  # cut off while its header was written
    with target("7.0") as server:
        url = url_of(server)
        code, report = run(backup, url, "--journal", str(journal))
        assert code == 1 and report["reasons"] == [
            f"{journal}: not a journal of rbkit's network restore (rbkit.network-journal/1): "
            "--restart discards it and starts over"
        ]
        assert server.client().dbsize() == 0
        code, report = run(backup, url, "--journal", str(journal), "--restart")
        assert code == 0, report["reasons"]
        assert not journal.exists()
        with reference(backup, "7.0") as ref:
            assert assert_same_keyspace(server, ref) == TOTAL
