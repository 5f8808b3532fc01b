"""toolkit.server.process: a scratch server's start waits out a server too busy to answer."""

from __future__ import annotations

import socket
import time

from conftest import DEBUG_CONFIG, binary

from toolkit.server.process import running_server


def test_waiting_for_a_server_too_busy_to_answer_keeps_asking() -> None:
    """A server blocked longer than the 5 s socket timeout of :meth:`wait_ready` (here by
    DEBUG SLEEP, as a busy machine or a module's slow load can block it) is asked again
    until it answers, not given up on with a redis TimeoutError."""
    with running_server(binary("7.0"), config=dict(DEBUG_CONFIG)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as blocker:
            blocker.sendall(b"DEBUG SLEEP 7\r\n")  # one command, sent once: no client retries
            time.sleep(0.5)  # the server is inside the sleep now
            started = time.monotonic()
            server.wait_ready(timeout=60)
            waited = time.monotonic() - started
            assert blocker.recv(16) == b"+OK\r\n"
        assert 5 <= waited < 30  # it met the socket timeout once, then asked again
        assert server.client().ping()
