"""The one way rbkit reaches a server: what a redis-cli user types, turned into clients.

A server is named by a URL (``redis://[user:pass@]host:port[/db]``, ``rediss://``,
``unix:///path.sock[?db=N]``) or a bare ``host:port`` (``host`` alone: port 6379), with
redis-cli's connection options on top (:class:`ConnectOptions`). Credentials in the URL win;
else the user is ``--user``'s and the password ``-a``'s, else the caller's (a config file's
``requirepass``), else ``REDISCLI_AUTH``'s, as redis-cli takes it. A password is used to log
in and never shown: :attr:`Server.display` is the URL without it.

:meth:`Server.check` is the first contact: one "connecting to ..." line (through the
``announce`` the command line gives), then PING within the connect timeout. What goes wrong
there, or on any later connection, becomes one :class:`~toolkit.errors.ConnectError` line
naming the server (:meth:`Server.error`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from toolkit.errors import ConnectError, UsageError

if TYPE_CHECKING:  # redis-py is imported when a server is reached, not with the CLI
    import redis
    from redis.cluster import RedisCluster

URL_SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_PORT = 6379
CONNECT_TIMEOUT = 5.0  # seconds: connecting, and the first reply (--connect-timeout)
READ_TIMEOUT = 60.0  # seconds a reply may take once connected, unless the caller says

# host:port, [v6]:port, or host alone (a bare name: see looks_like_server for diff's rule).
_BARE = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?")


@dataclass(frozen=True)
class ConnectOptions:
    """redis-cli's connection options, as given on the command line (none: the defaults)."""

    password: str | None = field(default=None, repr=False)  # -a / --pass
    user: str | None = None  # --user
    tls: bool = False  # --tls
    cacert: Path | None = None  # --cacert: the CA that signed the server's certificate
    cert: Path | None = None  # --cert / --key: a client certificate, when the server asks
    key: Path | None = None
    insecure: bool = False  # --insecure: no certificate check
    timeout: float = CONNECT_TIMEOUT  # --connect-timeout
    # rbkit's own, not redis-cli's: may set the server's repl-diskless-sync-delay to 0 for
    # the fork of its snapshot (--sync-now; see toolkit.server.snapshot)
    sync_now: bool = False
    announce: Callable[[str], None] | None = field(default=None, repr=False, compare=False)


def is_url(spec: str) -> bool:
    return spec.lower().startswith(URL_SCHEMES)


def looks_like_server(spec: str) -> bool:
    """Does ``spec``, given where a file could be too (``rbkit diff A B``), name a server?

    A file or directory of that name that exists wins; else a URL, or a bare ``host:port``
    (a port is needed: a bare word is a file name that does not exist)."""
    if os.path.lexists(spec):
        return False
    if is_url(spec):
        return True
    m = _BARE.fullmatch(spec)
    return m is not None and m.group("port") is not None


def safe_url(url: str, mask: str = "") -> str:
    """``url`` without its password (in the userinfo or a ``password=`` query parameter).

    With ``mask`` the userinfo keeps a placeholder where the password was
    (``redis://:***@host``), so a reader sees that one was given.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@")[-1] if "@" in url else url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password = userinfo.split(":", 1)[0], ":" in userinfo
        if mask and has_password:
            user = f"{user}:{mask}"
        netloc = f"{user}@{host}" if user else host
    query = parts.query
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "password"]
        query = urlencode(kept)
    out = f"{parts.scheme}://{netloc}{parts.path}"
    return out + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _as_url(spec: str) -> str:
    """``spec`` as a URL: a URL as it is (scheme in lower case), ``host[:port]`` as
    ``redis://host:port``. A UsageError, naming it without a password, for anything else."""
    if is_url(spec):
        scheme, rest = spec.split("://", 1)
        return f"{scheme.lower()}://{rest}"
    if _BARE.fullmatch(spec):
        return f"redis://{spec}"
    shown = safe_url(spec) if "://" in spec else spec.rsplit("@", 1)[-1]  # user:pass@host
    raise UsageError(
        f"{shown}: not a usable server address: expected host:port or a redis://, "
        "rediss:// or unix:// URL"
    )


@dataclass(eq=False)
class Server:
    """A server to connect to, and how: made by :meth:`parse`; never shows its password."""

    display: str  # the URL without its password: scheme://[user@]host:port[/db]
    address: str  # host:port, or the socket's path (the "connecting to" line)
    db: int | None  # the db the URL names
    tls: bool
    user: str | None
    has_password: bool
    connect_timeout: float
    read_timeout: float
    _connection_class: type[redis.connection.AbstractConnection] = field(repr=False)
    _kwargs: dict[str, Any] = field(repr=False)
    sync_now: bool = False  # ConnectOptions.sync_now
    _announce: Callable[[str], None] | None = field(default=None, repr=False)
    _announced: bool = field(default=False, repr=False)

    @classmethod
    def parse(
        cls,
        spec: str,
        options: ConnectOptions | None = None,
        *,
        password: str | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> Server:
        """The server ``spec`` names, with ``options`` where the URL says nothing;
        ``password`` is the caller's own (used before ``REDISCLI_AUTH``). Raises a UsageError
        for an address or URL that cannot be used."""
        import redis
        from redis.connection import parse_url

        options = options or ConnectOptions()
        url = _as_url(spec)
        try:
            kwargs = parse_url(url)
        except ValueError as e:
            raise UsageError(f"{safe_url(spec)}: not a usable server URL ({e})") from None
        connection_class = kwargs.pop("connection_class", redis.Connection)
        db = kwargs.pop("db", None)
        if not kwargs.get("password"):  # the URL's credentials win; else the options'
            if not kwargs.get("username") and options.user:
                kwargs["username"] = options.user
            secret = options.password or password or os.environ.get("REDISCLI_AUTH")
            if secret:
                kwargs["password"] = secret
        unix = connection_class is redis.UnixDomainSocketConnection
        tls = connection_class is redis.SSLConnection or (options.tls and not unix)
        if tls:
            connection_class = redis.SSLConnection
            _tls_kwargs(kwargs, options)
        user = kwargs.get("username")
        if unix:
            address = str(kwargs.get("path", ""))
            query = f"?db={db}" if db is not None else ""
            display = f"unix://{quote(user) + '@' if user else ''}{quote(address)}{query}"
        else:
            host, port = str(kwargs.get("host", "localhost")), int(kwargs.get("port", 0) or 0)
            kwargs["host"], kwargs["port"] = host, port or DEFAULT_PORT
            address = f"[{host}]:{kwargs['port']}" if ":" in host else f"{host}:{kwargs['port']}"
            where = f"{quote(user)}@{address}" if user else address
            display = f"{'rediss' if tls else 'redis'}://{where}" + (
                f"/{db}" if db is not None else ""
            )
        return cls(
            display=display,
            address=address,
            db=db,
            tls=tls,
            user=user,
            has_password=bool(kwargs.get("password")),
            connect_timeout=options.timeout,
            read_timeout=read_timeout,
            _connection_class=connection_class,
            _kwargs=kwargs,
            sync_now=options.sync_now,
            _announce=options.announce,
        )

    @property
    def unix(self) -> bool:
        return self._connection_class.__name__ == "UnixDomainSocketConnection"

    def pool(
        self, db: int | None = None, *, timeout: float | None = None, retries: int = 0
    ) -> redis.ConnectionPool:
        """A connection pool on ``db`` (the URL's when None, else 0); replies may take
        ``timeout`` seconds (the server's read timeout when None); a failed command is tried
        again ``retries`` times (0: never, as for writes)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        timeout = self.read_timeout if timeout is None else timeout
        return redis.ConnectionPool(
            connection_class=self._connection_class,
            **self._kwargs,
            db=(self.db or 0) if db is None else db,
            socket_timeout=timeout,
            socket_connect_timeout=min(self.connect_timeout, timeout),
            retry=Retry(NoBackoff(), retries),
        )

    def client(
        self, db: int | None = None, *, timeout: float | None = None, retries: int = 0
    ) -> redis.Redis:
        """A client with its own :meth:`pool` (SELECT is per connection), closed with it."""
        import redis

        return redis.Redis.from_pool(self.pool(db, timeout=timeout, retries=retries))

    def at(self, host: str, port: int) -> Server:
        """The same server settings (credentials, TLS, timeouts) for another node at
        ``host:port``: a cluster's other primaries."""
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        where = f"{quote(self.user)}@{address}" if self.user else address
        return dataclasses.replace(
            self,
            display=f"{'rediss' if self.tls else 'redis'}://{where}",
            address=address,
            db=None,
            _kwargs={**self._kwargs, "host": host, "port": port},
        )

    def cluster(self) -> RedisCluster:
        """A cluster client seeded with this node."""
        from redis.backoff import NoBackoff
        from redis.cluster import RedisCluster
        from redis.retry import Retry

        if self.unix:
            raise UsageError(f"{self.display}: a cluster is reached over TCP, not a socket")
        kwargs = dict(self._kwargs)
        if self.tls:
            kwargs["ssl"] = True
        return RedisCluster(
            **kwargs,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.read_timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def check(self) -> None:
        """The first contact: say "connecting to ..." (once), connect and PING within the
        connect timeout. Raises ConnectError with what went wrong."""
        import redis

        if self._announce is not None and not self._announced:
            self._announced = True
            self._announce(f"connecting to {self.address}{' (TLS)' if self.tls else ''} ...")
        client = self.client(timeout=self.connect_timeout)
        try:
            client.ping()
        except (redis.RedisError, OSError) as e:
            raise self.error(e) from None
        finally:
            client.close()

    def error(self, e: BaseException) -> ConnectError:
        """``e``, met talking to this server, as one line naming it (never the password)."""
        reason, unreachable = self._explain(e)
        return ConnectError(f"{self.display}: {reason}", unreachable=unreachable)

    def _explain(self, e: BaseException) -> tuple[str, bool]:
        import socket
        import ssl

        import redis

        chain = list(_causes(e))
        text = " ".join(str(x) for x in chain)
        auth = isinstance(e, redis.AuthenticationError) or any(
            code in text for code in ("NOAUTH", "WRONGPASS", "invalid password")
        )
        if auth:
            if "WRONGPASS" in text or "invalid" in text or self.has_password:
                return "the server refused the password", False
            return "the server needs a password (-a PASSWORD, REDISCLI_AUTH or the URL)", False
        unable = "cannot connect: "
        verify = next((x for x in chain if isinstance(x, ssl.SSLCertVerificationError)), None)
        if verify is not None:
            why = verify.verify_message or verify.reason or "unknown reason"
            return (
                f"{unable}the server's TLS certificate does not verify ({why}): give the CA "
                "that signed it with --cacert, or --insecure to skip the check",
                False,
            )
        ended = any(isinstance(x, ssl.SSLEOFError | ssl.SSLZeroReturnError) for x in chain)
        if self.tls and (ended or "certificate required" in text):
            # TLS 1.3: the client's side of the handshake is done before the server checks
            # the client's certificate; a missing one shows as the connection ending.
            return (
                f"{unable}the server ended the TLS connection: it may want a client "
                "certificate (--cert and --key)",
                False,
            )
        tls_error = any(isinstance(x, ssl.SSLError) for x in chain)
        timed_out = any(isinstance(x, redis.TimeoutError | TimeoutError) for x in chain)
        if self.tls and (tls_error or (timed_out and "handshake" in text)):
            # A plain server reads the ClientHello as a command: it waits for a newline (a
            # handshake timeout), or answers an error that is no TLS record.
            return (
                f"{unable}no TLS handshake: the port may be plain, not TLS (use redis:// "
                "without --tls)",
                False,
            )
        if timed_out:
            return (
                f"{unable}no answer within {self.connect_timeout:g} s (--connect-timeout "
                "SECONDS waits longer)",
                True,
            )
        for x in chain:
            if isinstance(x, ConnectionRefusedError):
                return f"{unable}connection refused (nothing listens there)", True
            if isinstance(x, FileNotFoundError):
                return f"{unable}no such socket", True
            if isinstance(x, PermissionError):
                return f"{unable}permission denied on the socket", False
            if isinstance(x, socket.gaierror):
                return f"{unable}unknown host ({x.strerror})", True
        closed = any(isinstance(x, ConnectionResetError | BrokenPipeError) for x in chain)
        if closed or "closed by server" in text:
            if self.tls:
                return f"{unable}the server closed the connection", False
            return (
                f"{unable}the server closed the connection: the port may be a TLS one "
                "(use rediss:// or --tls)",
                False,
            )
        return f"{unable}{' '.join(str(e).split()) or type(e).__name__}", False


def _tls_kwargs(kwargs: dict[str, Any], options: ConnectOptions) -> None:
    """The SSLConnection settings of ``options`` (the URL's own query ones stay)."""
    if options.cacert is not None:
        kwargs["ssl_ca_certs"] = os.fspath(options.cacert)
    if options.cert is not None:
        kwargs["ssl_certfile"] = os.fspath(options.cert)
    if options.key is not None:
        kwargs["ssl_keyfile"] = os.fspath(options.key)
    if options.insecure:
        kwargs["ssl_cert_reqs"] = "none"
    if str(kwargs.get("ssl_cert_reqs", "required")).lower() == "none":
        kwargs["ssl_check_hostname"] = False  # no certificate check: no name to check either


def _causes(e: BaseException) -> Iterator[BaseException]:
    """``e`` and the exceptions it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
