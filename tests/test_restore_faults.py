"""Faults injected into ``rbkit restore BACKUP --config redis.conf --yes`` from outside the
product, with real servers and real rbkit processes (issue 9's evidence).

After each fault the same invariants are checked, against live servers only:

- every write a client got acknowledged (:class:`AckWriter`, writing ``w:<n>`` all along) is on
  the final server or in a data file rbkit kept: the rollback folders and their ``rejected*``
  folders, each read by loading it into a scratch redis-server;
- the final data is fully old (the target's own keys, DEBUG DIGEST-VALUE and TTL unchanged) or
  fully new (the backup's keys as a server that loaded the backup directly holds them), never
  a mix;
- nothing of rbkit's is left: no process carrying the run's mark in its environment (rbkit,
  its lifeline watcher, a scratch server, a start command), nothing in the TMPDIR its
  processes were given, no ``.rbkit-*`` entry, journal or lock in the data dir; and the target
  takes writes.

The random kills are seeded (:data:`SEED`): each trial draws a target (6.2, 7.0 or 8.2,
appendonly no or yes) and a moment, in a stratum of its own of either a whole run or of its
journaled part (save, stop, keep, install, start, verify), as timed once here from outside;
SIGKILLs rbkit then, and recovers with ``rbkit restore --rollback DIR`` or a rerun of the
restore (alternately). Run with ``-s`` to see the totals line.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import random
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import binary
from fault_support import (
    AckWriter,
    Sandbox,
    State,
    describe,
    kept_writes,
    process_uid,
    reference_state,
    resize_tmpfs,
    target_state,
    tmpfs,
    write_refused,
    writes_on,
)
from restore_support import AOF, JOURNAL, RDB, REDIS_UID, Run, Target

BACKUP = RDB / "redis-6.2-all-types.rdb"  # RDB 9: every target version here reads it
SEED = 9
TRIALS = 30
TARGETS = [
    ("7.0", False),
    ("7.0", True),
    ("6.2", False),
    ("6.2", True),
    ("8.2", False),
    ("8.2", True),
]
PAGE = 4096

TALLY: collections.Counter[str] = collections.Counter()
CUTS: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def totals() -> Iterator[None]:
    yield
    if TALLY["trials"]:
        cuts = ", ".join(f"{n} {where}" for where, n in sorted(CUTS.items()))
        print(
            f"\nfaults: {TALLY['trials']} trials ({TALLY['kills']} of them rbkit SIGKILLed), "
            f"{TALLY['acked']} writes acknowledged, {TALLY['lost']} lost; kills cut the "
            f"restore at: {cuts or '-'}"
        )


class Scene:
    """One test's targets, writers, rbkit sandbox and mounts, all undone at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sandbox = Sandbox(tmp / "rbkit-tmp")
        self.targets: list[Target] = []
        self.writers: list[AckWriter] = []
        self.stack = contextlib.ExitStack()

    def target(
        self,
        version: str = "7.0",
        root: Path | None = None,
        *,
        save: bool = True,
        **kw: Any,
    ) -> Target:
        """A started target holding the old data (old:0.. and db 3's old:hash), saved."""
        t = Target(root or self.tmp / f"target{len(self.targets)}", binary(version), **kw)
        self.targets.append(t)
        t.start()
        t.fill_old()
        if save:
            t.save_now()
        return t

    def writer(self, t: Target) -> AckWriter:
        w = AckWriter(t)
        self.writers.append(w)
        return w.start_writing()

    def mount(self, path: Path, size: int) -> Path:
        return self.stack.enter_context(tmpfs(path, size))

    def work(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="work-", dir=self.tmp))

    def close(self) -> None:
        for w in self.writers:
            w.halt.set()
        for t in self.targets:
            t.cleanup()
        self.sandbox.kill_marked()
        self.stack.close()


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    s = Scene(tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], State]:
    """``references(version)``: the keys, values and TTLs a server of that version holds after
    loading BACKUP directly (computed once per version)."""
    made: dict[str, State] = {}

    def get(version: str) -> State:
        if version not in made:
            work = tmp_path_factory.mktemp(f"reference-{version}") / "server"
            made[version] = reference_state(binary(version), BACKUP, work)
        return made[version]

    return get


def settle(
    scene: Scene,
    t: Target,
    writer: AckWriter,
    old: State,
    new: State,
    expect: set[str],
    *,
    pause_may_linger: bool = False,
) -> str:
    """Check the invariants once rbkit is done; returns the final state ("old" or "new").
    ``pause_may_linger``: a killed rbkit's CLIENT PAUSE may still hold writes (it lapses by
    itself), so a write that waits is waited for; otherwise waiting is a failure."""
    acked = writer.stop()
    final = describe(target_state(t), old, new)
    lost = acked - writes_on(t) - kept_writes(t, scene.work())
    TALLY["trials"] += 1
    TALLY["acked"] += len(acked)
    TALLY["lost"] += len(lost)
    assert acked, "the writer got no write acknowledged"
    assert not lost, (
        f"{len(lost)} of {len(acked)} acknowledged writes are neither on the server nor in a "
        f"kept file: {sorted(lost)[:10]}"
    )
    assert final in expect, f"the final data is {final}, expected {' or '.join(sorted(expect))}"
    left = scene.sandbox.leftovers(t)
    assert not left, f"rbkit left behind: {left}"
    refused = write_refused(t, wait=pause_may_linger)
    assert refused is None, f"the target does not take writes after rbkit: {refused}"
    return final


# -- 1. rbkit SIGKILLed at random moments ------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    number: int
    version: str
    appendonly: bool
    span: str  # "whole": the kill falls anywhere in a run; "journaled": from the journal on
    fraction: float  # where in that span rbkit is killed
    recovery: str  # "rollback" (rbkit restore --rollback DIR) or "rerun" (the restore again)

    @property
    def id(self) -> str:
        aof = "aof" if self.appendonly else "rdb"
        at = f"{self.span}{self.fraction:.2f}"
        return f"{self.number:02d}-{self.version}-{aof}-{at}-{self.recovery}"


def _trials() -> list[Trial]:
    """Half the kills spread over a whole run, half over its journaled part (where the target
    is saved, stopped, moved and started); each in a stratum of its own, in random order."""
    rng = random.Random(SEED)
    half = TRIALS // 2
    moments = [
        (span, (k + rng.random()) / half)
        for span in ("whole", "journaled")
        for k in rng.sample(range(half), half)
    ]
    rng.shuffle(moments)
    return [
        Trial(i, *TARGETS[rng.randrange(len(TARGETS))], *moments[i], ("rollback", "rerun")[i % 2])
        for i in range(TRIALS)
    ]


@dataclass(frozen=True)
class Timing:
    """A normal run, as seen from outside: seconds from starting rbkit to its journal showing
    in the data dir, and to its exit."""

    journaled: float
    total: float

    def moment(self, trial: Trial) -> float:
        if trial.span == "whole":
            return trial.fraction * self.total
        return self.journaled + trial.fraction * (self.total - self.journaled)


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory: pytest.TempPathFactory) -> Timing:
    """Time a whole restore here, with a client writing: the faster of two runs (the first may
    also compile rbkit's bytecode)."""
    timings = []
    for _ in range(2):
        s = Scene(tmp_path_factory.mktemp("normal"))
        try:
            t = s.target("7.0")
            s.writer(t)
            started = time.monotonic()
            process = s.sandbox.popen("restore", BACKUP, "--config", t.conf, "--yes")
            journaled = None
            while process.poll() is None and time.monotonic() - started < 120:
                if journaled is None and (t.data / JOURNAL).exists():
                    journaled = time.monotonic() - started
                time.sleep(0.002)
            assert process.wait(10) == 0
            assert journaled is not None, "the journal never showed in the data dir"
            timings.append(Timing(journaled, time.monotonic() - started))
        finally:
            s.close()
    return min(timings, key=lambda timing: timing.total)


def _cut_at(t: Target, code: int | None) -> str:
    """Where the killed restore stood: its journal's last line, or what its exit says."""
    path = t.data / JOURNAL
    if path.exists():
        lines = path.read_text().splitlines()
        last = json.loads(lines[-1]) if len(lines) > 1 else {"step": "plan", "status": "written"}
        return f"{last['step']} ({last['status']})"
    return "finished" if code == 0 else "before the journal"


def _recover(s: Scene, t: Target, how: str) -> set[str]:
    """Recover as an operator would; returns the final states that recovery must leave."""
    had_journal = (t.data / JOURNAL).exists()
    if how == "rollback":
        run = s.sandbox.run("restore", "--rollback", t.data)
        if not had_journal:
            assert run.code == 2, run.text
            assert "no restore in progress here (no journal)" in run.err, run.text
            return {"old", "new"}  # the killed run had not begun, or had finished
        if run.code == 0:
            return {"old"}
    else:
        run = s.sandbox.run("restore", BACKUP, "--config", t.conf, "--yes", "--json")
        if run.code == 0:
            assert run.json()["outcome"] == "restored", run.text
            return {"new"}
    # The server rbkit had started took client writes: the rollback refuses, and says how.
    assert run.code == 1 and "--discard-writes" in run.text, run.text
    again = s.sandbox.run("restore", "--rollback", t.data, "--discard-writes")
    assert again.code == 0, again.text
    return {"old"}


@pytest.mark.parametrize("trial", _trials(), ids=lambda trial: trial.id)
def test_killed_at_a_random_moment(
    scene: Scene, trial: Trial, normal_run: Timing, references: Callable[[str], State]
) -> None:
    """rbkit SIGKILLed at the trial's moment, a client writing throughout; then recovered."""
    t = scene.target(trial.version, appendonly=trial.appendonly)
    old, new = target_state(t), references(trial.version)
    writer = scene.writer(t)
    process = scene.sandbox.popen("restore", BACKUP, "--config", t.conf, "--yes")
    time.sleep(normal_run.moment(trial))
    process.kill()
    code = process.wait(60)
    cut = _cut_at(t, code)
    CUTS[cut] += 1
    TALLY["kills"] += 1
    expect = _recover(scene, t, trial.recovery)
    settle(scene, t, writer, old, new, expect, pause_may_linger=True)


@pytest.mark.parametrize("recovery", ["rollback", "rerun"])
def test_killed_while_the_new_server_refuses_writes(
    scene: Scene, recovery: str, references: Callable[[str], State]
) -> None:
    """The moment the random kills hit only now and then, made certain: rbkit SIGKILLed right
    after its start step, while the server it started still refuses writes until verified.
    The recovery must leave a server that takes writes again."""
    t = scene.target("7.0")
    old, new = target_state(t), references("7.0")
    writer = scene.writer(t)
    killed = scene.sandbox.run("restore", BACKUP, "--config", t.conf, "--yes", fault="start")
    assert killed.code == -9, killed.text
    TALLY["kills"] += 1
    CUTS["start (done)"] += 1
    expect = _recover(scene, t, recovery)
    settle(scene, t, writer, old, new, expect, pause_may_linger=True)


# -- 2. SHUTDOWN SAVE fails ----------------------------------------------------------------------


def _refused(run: Run, step: str) -> dict:
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "refused", report["reason"]
    assert report["steps"][-1]["name"] == step, report["steps"]
    return report


def test_shutdown_save_failing_leaves_the_server_running(
    scene: Scene, references: Callable[[str], State]
) -> None:
    """A directory named like Redis's temp file for SAVE: SHUTDOWN SAVE fails, so the server
    is the only copy of its latest writes. The restore is refused; the server runs on with
    every acknowledged write, no rollback folder, no journal, writes not held off."""
    t = scene.target("7.0")
    pid = t.pid()
    (t.data / f"temp-{pid}.rdb").mkdir()
    control = t.client()
    save = control.config_get("save")
    old = target_state(t)
    writer = scene.writer(t)
    run = scene.sandbox.run("restore", BACKUP, "--config", t.conf, "--yes", "--json")
    report = _refused(run, "stop")
    assert t.up() and t.pid() == pid, "the target must still run, never stopped"
    assert not t.rollback_dirs(), "nothing was moved: no rollback folder"
    assert control.config_get("save") == save
    control.close()
    settle(scene, t, writer, old, references("7.0"), {"old"})
    folder = report["rollback_dir"]
    assert folder is None or Path(folder).is_dir(), (
        f"the report names a rollback folder that was never made: {folder}"
    )


# -- 3. disk full ------------------------------------------------------------------------------


def _pages(n: int) -> int:
    return -(-n // PAGE) * PAGE


def _pad(t: Target, keys: int = 8, size: int = 128 << 10) -> None:
    """Old data that takes room on disk: random (incompressible) values."""
    c = t.client()
    try:
        for i in range(keys):
            c.set(f"old:pad:{i}", os.urandom(size))
    finally:
        c.close()


@pytest.mark.parametrize("where", ["copy", "conversion", "stop-save"])
def test_disk_full(scene: Scene, where: str, references: Callable[[str], State]) -> None:
    """A small tmpfs as the data dir. ``copy``: the private copy of the backup does not fit;
    ``conversion``: an AOF backup fits, the RDB it becomes for an appendonly-no target does
    not; ``stop-save``: the BGSAVE fits, the stop's SHUTDOWN SAVE does not. Each time: a clean
    refusal, the target running with its old data and every acknowledged write."""
    root = scene.tmp / "target"
    data = scene.mount(root / "data", 16 << 20)
    backup = AOF / "redis-6.2-plain.aof" if where == "conversion" else BACKUP
    t = scene.target("7.0", root, save=where != "stop-save")
    copy = _pages(backup.stat().st_size)
    if where == "stop-save":
        _pad(t)
        t.save_now()  # how big its save is; then no dump.rdb, as if it never saved
        rdb = t.data / "dump.rdb"
        save = _pages(rdb.stat().st_size)
        rdb.unlink()
        resize_tmpfs(data, copy + save + save // 2)
        free = shutil.disk_usage(data).free
        assert copy + save <= free < copy + 2 * save  # the copy and one save fit, not two
    elif where == "conversion":
        resize_tmpfs(data, shutil.disk_usage(data).used + copy + 2 * PAGE)
        free = shutil.disk_usage(data).free
        assert copy <= free < copy + 3 * PAGE  # the copy fits, and little else
    else:
        resize_tmpfs(data, copy // 2)
        assert shutil.disk_usage(data).free < copy
    pid, listing = t.pid(), t.listing()
    old = target_state(t)
    writer = scene.writer(t)
    run = scene.sandbox.run("restore", backup, "--config", t.conf, "--yes", "--json")
    step = {"copy": "copy", "conversion": "stage", "stop-save": "stop"}[where]
    _refused(run, step)
    assert t.up() and t.pid() == pid, "the target must still run, never stopped"
    assert not t.rollback_dirs(), "nothing was moved: no rollback folder"
    if where == "stop-save":  # the server's own word for why it could not save
        assert "No space left on device" in t.log.read_text()
    else:  # (the BGSAVE before the stop writes dump.rdb)
        assert t.listing() == listing
    settle(scene, t, writer, old, references("7.0"), {"old"})


# -- 4. the backup replaced while the restore runs ---------------------------------------------


@pytest.mark.parametrize("replacement", ["another-backup", "garbage"])
def test_backup_replaced_after_the_copy(
    scene: Scene, replacement: str, references: Callable[[str], State]
) -> None:
    """Once the restore's private copy is complete, the backup file is overwritten in place:
    the restore goes on with the bytes it checked, and installs exactly those."""
    backup = scene.tmp / "backups" / "prod.rdb"
    backup.parent.mkdir()
    shutil.copyfile(BACKUP, backup)
    original = backup.read_bytes()
    if replacement == "garbage":
        swap = b"not a backup\n" * (len(original) // 13)
    else:
        swap = (RDB / "redis-7.0-strings-only.rdb").read_bytes()
    t = scene.target("7.0")
    old = target_state(t)
    writer = scene.writer(t)
    out = scene.tmp / "report.json"
    process = scene.sandbox.popen("restore", backup, "--config", t.conf, "--yes", "--json", out=out)
    replaced = False
    deadline = time.monotonic() + 120
    while not replaced and process.poll() is None and time.monotonic() < deadline:
        for folder in t.data.glob(".rbkit-restore-*"):
            with contextlib.suppress(OSError):
                if (folder / backup.name).stat().st_size == len(original):
                    backup.write_bytes(swap)
                    replaced = True
        time.sleep(0.001)
    code = process.wait(120)
    assert replaced, "the restore's private copy was never seen complete"
    assert backup.read_bytes() == swap
    report = json.loads(out.read_text())
    assert code == 0, report
    assert report["outcome"] == "restored", report["reason"]
    assert (t.data / "dump.rdb").read_bytes() == original
    assert list(report["sha256"].values()) == [hashlib.sha256(original).hexdigest()]
    settle(scene, t, writer, old, references("7.0"), {"new"})


# -- 5. a daemonized target whose start fails ----------------------------------------------------


def test_daemonized_start_that_fails_is_noticed_and_rolled_back(
    scene: Scene, references: Callable[[str], State]
) -> None:
    """``daemonize yes``, and the start command's first start fails after the daemonizing
    parent has exited 0 (a module that is not there). rbkit notices it long before its
    --timeout (600 s; the run must end within the 120 s hang guard), rolls back, and the
    rollback's start (the same command, which works now) brings back the old data, verified."""
    t = scene.target("7.0", daemonize=True)
    old = target_state(t)
    writer = scene.writer(t)
    first = t.root / "first-start"
    failing = shlex.join([*t.start_command(), "--loadmodule", "/nonexistent.so"])
    start = (
        f"if mkdir {shlex.quote(os.fspath(first))} 2>/dev/null; then exec {failing}; "
        f"else exec {shlex.join(t.start_command())}; fi"
    )
    run = scene.sandbox.run(
        "restore", BACKUP, "--config", t.conf, "--yes", "--json",
        "--start-cmd", start, "--timeout", "600",
        timeout=120,
    )  # fmt: skip
    assert first.is_dir(), "the failing start never ran"
    report = run.json()
    assert report["outcome"] == "rolled-back", (
        f"the start command failed, but the restore ended {report['outcome']}: "
        f"{[s['detail'] for s in report['steps'] if s['name'] == 'start']}"
    )
    assert run.code == 1, run.text
    if not report["rollback"]["verified"]:
        # The rollback starts the old data with the same --start-cmd, which rbkit cannot make
        # refuse writes: a client quick enough writes before rbkit's pause. Then it must say
        # so, and keep those writes (settle checks), not roll back again.
        assert "client writes reached it before rbkit could hold" in report["rollback"]["reason"]
    else:
        assert report["rollback"]["verified"] is True, report["rollback"]
    settle(scene, t, writer, old, references("7.0"), {"old"})


@pytest.mark.parametrize("daemonize", [False, True], ids=["foreground", "daemonized"])
def test_start_command_with_a_client_writing(
    scene: Scene, daemonize: bool, references: Callable[[str], State]
) -> None:
    """A ``--start-cmd`` that works (the target's own start command), a client writing all
    along. rbkit cannot start that server refusing writes, so a client quick enough may write
    before rbkit's pause is in: then the restore must say so (outcome "unverified", the writes
    counted, the server left running with them), never roll them away; else it is restored
    and verified. Either way no acknowledged write is lost."""
    t = scene.target("7.0", daemonize=daemonize)
    old = target_state(t)
    writer = scene.writer(t)
    start = shlex.join(t.start_command())
    run = scene.sandbox.run(
        "restore", BACKUP, "--config", t.conf, "--yes", "--json", "--start-cmd", start
    )  # fmt: skip
    report = run.json()
    if report["outcome"] == "unverified":
        assert run.code == 1, run.text
        assert report["writes"]["before_pause"] > 0, report
        assert report["rollback"]["refused"] is True
        assert "writes from clients" in report["rollback"]["reason"]
        finish = scene.sandbox.run("restore", "--rollback", t.data, "--discard-writes")
        # The server the rollback starts races the writer the same way: when a write gets in
        # before rbkit's pause, the rollback says it cannot compare exactly (exit 1), and
        # still nothing acknowledged may be lost.
        raced = "client writes reached it before rbkit could hold writes off" in finish.text
        assert finish.code == 0 or (finish.code == 1 and raced), finish.text
        settle(scene, t, writer, old, references("7.0"), {"old"})
        return
    assert report["outcome"] == "restored", report["reason"]
    assert run.code == 0, run.text
    settle(scene, t, writer, old, references("7.0"), {"new"})


# -- 6. a start command that hangs ---------------------------------------------------------------


def test_hanging_start_command_is_killed(scene: Scene, references: Callable[[str], State]) -> None:
    """``--start-cmd 'sleep 100000'`` never starts anything: rbkit kills it (and all it
    started) and starts ``redis-server CONFIG`` itself; restored and verified."""
    t = scene.target("7.0")
    old = target_state(t)
    writer = scene.writer(t)
    run = scene.sandbox.run(
        "restore", BACKUP, "--config", t.conf, "--yes", "--json",
        "--start-cmd", "sleep 100000", "--timeout", "20",
        timeout=120,
    )  # fmt: skip
    assert run.code == 0, run.text
    report = run.json()
    assert report["outcome"] == "restored" and report["verification"]["verified"]
    assert not [p for p in scene.sandbox.processes(t) if "sleep 100000" in p]
    settle(scene, t, writer, old, references("7.0"), {"new"})


# -- 7. SHUTDOWN or CONFIG renamed, SHUTDOWN denied by ACL ---------------------------------------

PASSWORD = "faults-pw"


@pytest.mark.parametrize(
    ("case", "command", "way", "code"),
    [
        ("shutdown-renamed", "SHUTDOWN", "--stop-cmd", 1),
        ("config-renamed", "CONFIG", "renamed", 2),
        ("acl-without-shutdown", "SHUTDOWN", "+shutdown", 1),
    ],
    ids=["shutdown-renamed", "config-renamed", "acl-without-shutdown"],
)
def test_commands_it_cannot_run_are_refused_up_front(
    scene: Scene, case: str, command: str, way: str, code: int
) -> None:
    """Refused before anything changes, with a message that names the command and the way
    forward; the data dir and DEBUG DIGEST unchanged, the server still running. Exit 1 (a
    refusal) when the restore could not stop the server; exit 2 (an I/O error, as for any
    server it cannot query) when CONFIG GET, its first question to the target, fails."""
    extra = {
        "shutdown-renamed": {"rename-command": 'SHUTDOWN ""'},
        "config-renamed": {"rename-command": "CONFIG CONFIG-faults-9f2c"},
        "acl-without-shutdown": {},
    }[case]
    acl = case.startswith("acl")
    t = scene.target("7.0", extra=extra, password=PASSWORD if acl else None)
    where = ["--config", t.conf]
    if acl:
        c = t.client()
        c.execute_command(
            "ACL", "SETUSER", "restorer", "on", ">restorer-pw", "~*", "&*", "+@all", "-shutdown"
        )
        c.close()
        where = ["--url", f"redis://restorer:restorer-pw@127.0.0.1:{t.port}"]
    pid, digest, listing = t.pid(), t.digest(), t.listing()
    run = scene.sandbox.run("restore", BACKUP, *where, "--yes")
    assert run.code == code, run.text
    message = run.text
    assert "internal error" not in message, message
    assert command in message and way in message, message
    assert t.up() and t.pid() == pid
    assert t.digest() == digest and t.listing() == listing
    assert not scene.sandbox.leftovers(t)


# -- 8. a target owned by `redis`, started by rbkit ----------------------------------------------


def test_redis_owned_target_comes_back_as_redis(
    scene: Scene, references: Callable[[str], State]
) -> None:
    """The target runs as `redis` (uid 102) and rbkit starts it itself (no --start-cmd): it
    comes back as redis, with the installed files owned by redis, and a later normal start as
    redis (runuser) works from them."""
    root = Path(tempfile.mkdtemp(prefix="faults-owner-"))  # reachable by `redis`
    scene.stack.callback(shutil.rmtree, root, ignore_errors=True)
    root.chmod(0o755)
    t = scene.target("7.0", root / "target", user="redis")
    assert process_uid(t.pid()) == REDIS_UID
    new = references("7.0")
    old = target_state(t)
    writer = scene.writer(t)
    run = scene.sandbox.run("restore", BACKUP, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    assert run.json()["outcome"] == "restored"
    assert process_uid(t.pid()) == REDIS_UID
    installed = t.data / "dump.rdb"
    assert installed.stat().st_uid == REDIS_UID
    settle(scene, t, writer, old, new, {"new"})
    t.save_now()  # the server writes its files as redis
    assert installed.stat().st_uid == REDIS_UID
    t.restart()  # runuser -u redis redis-server redis.conf
    assert process_uid(t.pid()) == REDIS_UID
    assert describe(target_state(t), old, new) == "new"
