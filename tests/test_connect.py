"""Reaching a server as redis-cli users do (toolkit/server/connect.py), against real servers:
URLs and bare host:port, -a / --user / REDISCLI_AUTH, a unix socket, TLS (certificates made
here with trustme) with --tls / --cacert / --cert / --key / --insecure, and the one-line error
of each way a connection fails. No output, report or error ever holds the password."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import trustme
from conftest import ROOT, CliRun, invoke_cli
from restore_support import JOURNAL, RDB, Target, make_target, rbkit

from toolkit.errors import ConnectError, UsageError
from toolkit.restore.network.target import inspect_target, parse_target
from toolkit.restore.target import discover
from toolkit.server.connect import ConnectOptions, Server, looks_like_server
from toolkit.server.process import RedisServer, find_binary, free_port, running_server

__all__ = ["make_target"]  # the fixture

PASSWORD = "s3cret-Pa55"
USER, USER_PASSWORD = "differ", "an0ther-s3cret"
SECRETS = (PASSWORD, USER_PASSWORD)


@dataclass
class Guarded:
    """One Redis 7.0 with a password, an ACL user, a unix socket and a TLS port; its dump."""

    server: RedisServer
    dump: Path
    socket: Path
    tls_port: int
    ca: Path  # the CA that signed the server's certificate
    other_ca: Path  # a CA that did not
    client_cert: Path  # signed by ``ca``
    client_key: Path

    @property
    def port(self) -> int:
        return self.server.port

    def admin(self) -> redis.Redis:
        return self.server.client(password=PASSWORD)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    tmp = tmp_path_factory.mktemp("connect")
    ca, other = trustme.CA(), trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("rbkit-test-client")
    files = {
        "server.crt": leaf.cert_chain_pems[0],
        "server.key": leaf.private_key_pem,
        "ca.crt": ca.cert_pem,
        "other-ca.crt": other.cert_pem,
        "client.crt": client.cert_chain_pems[0],
        "client.key": client.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(os.fspath(tmp / name))
    sock, tls_port = tmp / "redis.sock", free_port()
    config = {
        "unixsocket": os.fspath(sock),
        "unixsocketperm": "700",
        "tls-port": str(tls_port),
        "tls-cert-file": os.fspath(tmp / "server.crt"),
        "tls-key-file": os.fspath(tmp / "server.key"),
        "tls-ca-cert-file": os.fspath(tmp / "ca.crt"),
        "tls-auth-clients": "no",
    }
    with running_server(find_binary("7.0"), config=config) as server:
        c = server.client()
        c.mset({"user:1": "ada", "user:2": "grace", "visits": "41"})
        c.rpush("queue", "a", "b", "c")
        c.hset("h", mapping={"f": "v"})
        c.save()
        dump = Path(shutil.copyfile(server.directory / "dump.rdb", tmp / "dump.rdb"))
        c.execute_command("ACL", "SETUSER", USER, "on", f">{USER_PASSWORD}", "~*", "+@all")
        # Set once the server runs (its readiness probe has none); its client() then sends it.
        c.config_set("requirepass", PASSWORD)
        c.close()
        plain_client = server.client
        server.client = lambda db=0, **kw: plain_client(db, **{"password": PASSWORD, **kw})  # type: ignore[method-assign]
        yield Guarded(
            server, dump, sock, tls_port, tmp / "ca.crt", tmp / "other-ca.crt",
            tmp / "client.crt", tmp / "client.key",
        )  # fmt: skip


@pytest.fixture(autouse=True)
def no_rediscli_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDISCLI_AUTH", raising=False)


def no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def diff(g: Guarded, server: str, *args: str | Path) -> CliRun:
    """``rbkit diff DUMP SERVER --json ARGS``."""
    run = invoke_cli("diff", g.dump, server, "--json", *args)
    no_secret(run.stdout, run.stderr)
    return run


def same(run: CliRun) -> dict[str, object]:
    """The JSON report of a diff that found the server equal to its dump."""
    assert run.exit_code == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["same"] is True and report["b"]["kind"] == "live"
    return report


def restore_to(g: Guarded, server: str, *args: str | Path) -> CliRun:
    """``rbkit restore DUMP --to SERVER --replace --yes --json ARGS`` (the dump into its own
    server: its keys stay what they were)."""
    run = invoke_cli("restore", g.dump, "--to", server, "--replace", "--yes", "--json", *args)
    no_secret(run.stdout, run.stderr)
    return run


def verified(run: CliRun) -> dict[str, object]:
    assert run.exit_code == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["outcome"] == "verified"
    return report


def error_line(run: CliRun) -> str:
    """The one ``error:`` line of a run that failed (exit 2), with nothing on stdout."""
    assert run.exit_code == 2, run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


# -- passwords -------------------------------------------------------------------------------


def test_password_in_the_url_with_a_and_from_rediscli_auth(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    g, where = guarded, f"127.0.0.1:{guarded.port}"
    report = same(diff(g, f"redis://:{PASSWORD}@{where}"))
    assert report["b"]["name"] == f"redis://{where}"
    assert same(diff(g, where, "-a", PASSWORD))["b"]["name"] == f"redis://{where}"
    same(diff(g, f"redis://{where}/0", "--pass", PASSWORD))
    # The URL's own password wins over -a.
    same(diff(g, f"redis://:{PASSWORD}@{where}", "-a", "not-it"))
    assert verified(restore_to(g, where, "-a", PASSWORD))["target"]["url"] == f"redis://{where}"
    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    same(diff(g, where))
    verified(restore_to(g, f"redis://{where}"))
    # -a wins over REDISCLI_AUTH, as in redis-cli.
    wrong = diff(g, where, "-a", "not-it")
    assert error_line(wrong) == f"error: redis://{where}: the server refused the password"


def test_acl_user_and_password(guarded: Guarded) -> None:
    g, where = guarded, f"127.0.0.1:{guarded.port}"
    report = same(diff(g, where, "--user", USER, "-a", USER_PASSWORD))
    assert report["b"]["name"] == f"redis://{USER}@{where}"
    same(diff(g, f"redis://{USER}:{USER_PASSWORD}@{where}"))
    verified(restore_to(g, where, "--user", USER, "-a", USER_PASSWORD))
    # The URL's user and password win over --user and -a.
    same(diff(g, f"redis://{USER}:{USER_PASSWORD}@{where}", "--user", "nobody", "-a", "x"))
    wrong = diff(g, where, "--user", USER, "-a", PASSWORD)
    assert error_line(wrong) == f"error: redis://{USER}@{where}: the server refused the password"


def test_needs_a_password_and_password_refused(guarded: Guarded) -> None:
    g, where = guarded, f"127.0.0.1:{guarded.port}"
    needs = (
        f"error: redis://{where}: the server needs a password (-a PASSWORD, REDISCLI_AUTH or "
        "the URL)"
    )
    refused = f"error: redis://{where}: the server refused the password"
    assert error_line(diff(g, where)) == needs
    assert error_line(restore_to(g, where)) == needs
    assert error_line(diff(g, f"redis://:wrong-{PASSWORD}@{where}")) == refused
    assert error_line(restore_to(g, where, "-a", f"wrong-{PASSWORD}")) == refused
    # With --json, the error is a JSON object on stdout too: without the password either.
    run = restore_to(g, f"redis://default:wrong-{PASSWORD}@{where}")
    assert error_line(run) == f"error: redis://default@{where}: the server refused the password"
    assert json.loads(run.stdout)["error"] == run.stderr.strip().removeprefix("error: ")


def test_file_restore_url_with_a_and_user(make_target) -> None:
    """--url (a file restore) takes the same options; --dry-run reaches the server and plans."""
    t: Target = make_target("7.0", password=PASSWORD)
    t.client().execute_command("ACL", "SETUSER", USER, "on", f">{USER_PASSWORD}", "+@all", "~*")
    backup = RDB / "redis-7.0-strings-only.rdb"
    where = f"127.0.0.1:{t.port}"
    for args, shown in (
        (("-a", PASSWORD), f"redis://{where}"),
        (("--user", USER, "--pass", USER_PASSWORD), f"redis://{USER}@{where}"),
    ):
        run = rbkit("restore", backup, "--url", where, "--dry-run", *args)
        assert run.code == 0, run.text
        assert f"target: redis 7.0.15 at {shown} (running)" in run.out
        no_secret(run.out, run.err)
    refused = rbkit("restore", backup, "--url", where, "--dry-run", "-a", "wrong")
    assert refused.code == 2
    assert refused.err.strip() == f"error: redis://{where}: the server refused the password"
    # A restore with -a, then one cut off after its install and rolled back with -a: neither
    # the outputs nor any journal hold the password.
    run = rbkit("restore", backup, "--url", where, "-a", PASSWORD, "--yes", "--json")
    assert run.code == 0, run.text
    assert run.json()["target"]["address"] == f"redis://{where}"
    journal = Path(run.json()["journal"]).read_text()
    killed = rbkit("restore", backup, "--url", where, "-a", PASSWORD, "--yes", kill_after="install")
    assert killed.code == -9
    back = rbkit("restore", "--rollback", t.data, "--url", where, "-a", PASSWORD)
    assert back.code == 0, back.text
    no_secret(run.out, run.err, journal, killed.out, killed.err, back.out, back.err)
    for path in t.data.rglob(JOURNAL):
        no_secret(path.read_text())


# -- where a server is -----------------------------------------------------------------------


def test_unix_socket(guarded: Guarded) -> None:
    g = guarded
    url = f"unix://{g.socket}"
    assert same(diff(g, url, "-a", PASSWORD))["b"]["name"] == url
    same(diff(g, f"{url}?db=0", "-a", PASSWORD))
    verified(restore_to(g, url, "-a", PASSWORD))
    missing = g.socket.with_name("none.sock")
    run = diff(g, f"unix://{missing}")
    assert error_line(run) == f"error: unix://{missing}: cannot connect: no such socket"


def test_nothing_listening(guarded: Guarded, tmp_path: Path) -> None:
    port = free_port()
    want = (
        f"error: redis://127.0.0.1:{port}: cannot connect: connection refused (nothing listens "
        "there)"
    )
    assert error_line(diff(guarded, f"127.0.0.1:{port}")) == want
    assert error_line(restore_to(guarded, f"redis://127.0.0.1:{port}")) == want
    run = invoke_cli("restore", guarded.dump, "--url", f"127.0.0.1:{port}", "--yes")
    assert error_line(run) == want[:-1] + "); for a stopped target, pass --config redis.conf"


def test_a_server_that_never_answers_times_out() -> None:
    """A socket that listens but never accepts: the kernel completes the connection, nobody
    replies; the connect timeout ends the wait."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        where = f"127.0.0.1:{mute.getsockname()[1]}"
        backup = RDB / "redis-7.0-strings-only.rdb"
        run = invoke_cli("diff", backup, where, "--connect-timeout", "0.3")
    assert error_line(run) == (
        f"error: redis://{where}: cannot connect: no answer within 0.3 s "
        "(--connect-timeout SECONDS waits longer)"
    )


def test_a_file_that_exists_wins_over_host_port(
    guarded: Guarded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = f"127.0.0.1:{guarded.port}"
    monkeypatch.chdir(tmp_path)
    assert looks_like_server(where) and looks_like_server("localhost:6379")
    assert not looks_like_server("dump.rdb") and not looks_like_server("localhost")
    shutil.copyfile(guarded.dump, tmp_path / where)
    assert not looks_like_server(where)
    run = invoke_cli("diff", guarded.dump, where, "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["b"]["kind"] == "rdb"


def test_addresses_and_what_is_shown() -> None:
    """Display is the URL without its password; the options show where they apply."""
    shown = {
        "10.0.0.5": "redis://10.0.0.5:6379",
        "10.0.0.5:6380": "redis://10.0.0.5:6380",
        "[::1]:6380": "redis://[::1]:6380",
        f"redis://u:{PASSWORD}@h:1/2": "redis://u@h:1/2",
        f"REDISS://:{PASSWORD}@h": "rediss://h:6379",
        f"redis://h:1?password={PASSWORD}": "redis://h:1",
        "unix:///tmp/r.sock?db=3": "unix:///tmp/r.sock?db=3",
    }
    for spec, display in shown.items():
        assert Server.parse(spec).display == display
    tls_user = ConnectOptions(user="ops", password=PASSWORD, tls=True)
    server = Server.parse("h:1", tls_user)
    assert (server.display, server.address, server.tls) == ("rediss://ops@h:1", "h:1", True)
    assert PASSWORD not in repr(server) and PASSWORD not in repr(tls_user)
    assert not Server.parse("unix:///tmp/r.sock", tls_user).tls  # no TLS on a socket
    for bad in (f"http://u:{PASSWORD}@h:1", f"u:{PASSWORD}@h:1", "a b", "h:port"):
        with pytest.raises(UsageError, match="not a usable server") as info:
            Server.parse(bad)
        assert PASSWORD not in str(info.value)


def test_connection_options_are_refused_in_a_drill() -> None:
    run = invoke_cli("restore", RDB / "redis-7.0-strings-only.rdb", "--stage-only", "--tls")
    assert error_line(run) == (
        "error: --tls cannot be used with --stage-only: a restore drill touches no server but "
        "its own scratch one"
    )
    run = invoke_cli("restore", RDB / "redis-7.0-strings-only.rdb", "--stage-only", "--sync-now")
    assert error_line(run).startswith("error: --sync-now cannot be used with --stage-only")


# -- TLS -------------------------------------------------------------------------------------


def test_tls_with_cacert_insecure_and_a_rediss_url(guarded: Guarded) -> None:
    g = guarded
    where = f"127.0.0.1:{g.tls_port}"
    report = same(diff(g, where, "--tls", "--cacert", g.ca, "-a", PASSWORD))
    assert report["b"]["name"] == f"rediss://{where}"
    same(diff(g, f"rediss://:{PASSWORD}@{where}", "--cacert", g.ca))
    same(diff(g, f"rediss://{where}", "--insecure", "-a", PASSWORD))
    # What --to accepted before (redis-py's URL options) still works.
    same(diff(g, f"rediss://:{PASSWORD}@{where}?ssl_cert_reqs=none"))
    verified(restore_to(g, where, "--tls", "--cacert", g.ca, "-a", PASSWORD))
    verified(restore_to(g, f"rediss://{where}", "--insecure", "-a", PASSWORD))
    assert g.admin().dbsize() == 5  # the restores put back the same keys


def test_tls_mismatch_both_ways(guarded: Guarded) -> None:
    g = guarded
    plain, tls = f"127.0.0.1:{g.port}", f"127.0.0.1:{g.tls_port}"
    # A plain server reads the ClientHello as a command: no TLS handshake comes back.
    for run in (
        diff(g, plain, "--tls", "--cacert", g.ca, "--connect-timeout", "1"),
        restore_to(g, f"rediss://{plain}", "--cacert", g.ca, "--connect-timeout", "1"),
    ):
        assert error_line(run) == (
            f"error: rediss://{plain}: cannot connect: no TLS handshake: the port may be plain, "
            "not TLS (use redis:// without --tls)"
        )
    # A TLS port drops a client that speaks plain RESP.
    for run in (diff(g, tls, "-a", PASSWORD), restore_to(g, f"redis://{tls}", "-a", PASSWORD)):
        assert error_line(run) == (
            f"error: redis://{tls}: cannot connect: the server closed the connection: the port "
            "may be a TLS one (use rediss:// or --tls)"
        )


def test_certificate_that_does_not_verify(guarded: Guarded) -> None:
    g = guarded
    tls = f"127.0.0.1:{g.tls_port}"
    want = (
        f"error: rediss://{tls}: cannot connect: the server's TLS certificate does not verify "
        "(self-signed certificate in certificate chain): give the CA that signed it with "
        "--cacert, or --insecure to skip the check"
    )
    assert error_line(diff(g, tls, "--tls", "--cacert", g.other_ca, "-a", PASSWORD)) == want
    assert error_line(restore_to(g, f"rediss://{tls}", "--cacert", g.other_ca)) == want
    # Without --cacert the system's CAs are asked: they do not know this one either.
    run = diff(g, tls, "--tls", "-a", PASSWORD)
    assert error_line(run).startswith(
        f"error: rediss://{tls}: cannot connect: the server's TLS certificate does not verify ("
    )


def test_client_certificate(guarded: Guarded) -> None:
    g = guarded
    tls = f"127.0.0.1:{g.tls_port}"
    admin = g.admin()
    admin.config_set("tls-auth-clients", "yes")
    try:
        run = diff(g, tls, "--tls", "--cacert", g.ca, "-a", PASSWORD)
        assert error_line(run) == (
            f"error: rediss://{tls}: cannot connect: the server ended the TLS connection: it "
            "may want a client certificate (--cert and --key)"
        )
        mutual = ("--cert", g.client_cert, "--key", g.client_key)
        same(diff(g, tls, "--tls", "--cacert", g.ca, *mutual, "-a", PASSWORD))
        verified(restore_to(g, tls, "--tls", "--cacert", g.ca, *mutual, "-a", PASSWORD))
    finally:
        admin.config_set("tls-auth-clients", "no")
        admin.close()


# -- the "connecting to" line ----------------------------------------------------------------


def test_connecting_line_on_a_terminal_only(guarded: Guarded) -> None:
    """stderr a terminal: "connecting to HOST:PORT ..." comes first; a pipe: nothing but
    errors (CliRunner's stderr is no terminal)."""
    g = guarded
    where = f"127.0.0.1:{g.port}"
    quiet = diff(g, where, "-a", PASSWORD)
    assert quiet.exit_code == 0 and quiet.stderr == ""
    text = _stderr_on_a_terminal("diff", g.dump, where, "-a", PASSWORD)
    assert f"connecting to {where} ..." in text
    no_secret(text)
    tls = f"127.0.0.1:{g.tls_port}"
    text = _stderr_on_a_terminal("diff", g.dump, tls, "--tls", "--cacert", g.ca, "-a", PASSWORD)
    assert f"connecting to {tls} (TLS) ..." in text


def _stderr_on_a_terminal(*args: str | Path) -> str:
    """What ``rbkit ARGS`` writes to stderr when stderr is a pseudo-terminal."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "toolkit", *map(os.fspath, args)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
        )
        os.close(follower)
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, "no output from rbkit within 60 s"
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(60) == 0
        return b"".join(chunks).decode()
    finally:
        os.close(leader)


# -- the API ---------------------------------------------------------------------------------


def test_check_raises_connect_error_with_unreachable(guarded: Guarded) -> None:
    said: list[str] = []
    options = ConnectOptions(password=PASSWORD, announce=said.append)
    server = Server.parse(f"127.0.0.1:{guarded.port}", options)
    server.check()
    server.check()
    assert said == [f"connecting to 127.0.0.1:{guarded.port} ..."]  # once per server
    with pytest.raises(ConnectError) as info:
        Server.parse(f"127.0.0.1:{free_port()}").check()
    assert info.value.unreachable
    with pytest.raises(ConnectError) as info:
        Server.parse(f"127.0.0.1:{guarded.port}").check()
    assert not info.value.unreachable  # something answers: it needs a password


def test_a_tls_only_config_is_reached_over_tls(tmp_path: Path) -> None:
    """--config alone: a server with ``port 0`` and a ``tls-port`` is reached at rediss://."""
    tls_port = free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text(f"port 0\ntls-port {tls_port}\ndir {tmp_path}\n", encoding="utf-8")
    target = discover(conf, None)  # nothing listens there: a stopped target
    assert target.address == f"rediss://127.0.0.1:{tls_port}" and not target.running


def test_a_user_without_config_get_probes_databases_with_its_own_login(guarded: Guarded) -> None:
    """The network restore's preflight asks SELECT N over a second connection when CONFIG GET
    is denied: that connection logs in as the same user, with the same password."""
    admin = guarded.admin()
    admin.execute_command("ACL", "SETUSER", "noconfig", "on", ">pw-nc", "~*", "+@all", "-config")
    admin.close()
    options = ConnectOptions(user="noconfig", password="pw-nc")
    info = inspect_target(
        parse_target(f"127.0.0.1:{guarded.port}", options), cluster=False, dbs=[3]
    )
    assert (info.databases, info.databases_source) == (
        None,
        "CONFIG GET not allowed; SELECT 3 works",
    )
