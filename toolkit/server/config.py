"""Read the settings rbkit needs from a real redis.conf (dir, dbfilename, appendonly, ...).

Lines are split the way Redis splits them (sdssplitargs: "double quotes" with escapes,
'single quotes'); the last occurrence of a directive wins; ``include`` files are followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parsers import sds
from toolkit.errors import ConfigError

DEFAULTS = {
    "dir": ".",
    "dbfilename": "dump.rdb",
    "appendonly": "no",
    "appenddirname": "appendonlydir",
    "appendfilename": "appendonly.aof",
    "databases": "16",
    "aof-load-truncated": "yes",
    # How to reach and run the server (restore).
    "port": "6379",
    "tls-port": "0",
    "bind": "",
    "unixsocket": "",
    "requirepass": "",
    "supervised": "no",
    "daemonize": "no",
    "logfile": "",
    "pidfile": "",
    "min-replicas-to-write": "0",
}
WANTED = tuple(DEFAULTS)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class RedisConfig:
    path: Path | None
    settings: dict[str, str]
    modules: tuple[str, ...] = ()  # loadmodule paths, in order (arguments dropped)

    def get(self, name: str) -> str:
        return self.settings.get(name, DEFAULTS[name])

    @property
    def data_dir(self) -> Path:
        """``dir``. Redis resolves a relative one against the server's working directory,
        which a file cannot tell; rbkit takes the config file's folder and says so."""
        d = Path(self.get("dir"))
        if not d.is_absolute() and self.path is not None:
            d = self.path.parent / d
        return d

    @property
    def appendonly(self) -> bool:
        return self.get("appendonly").lower() == "yes"


def split_args(line: str) -> list[str]:
    """Split a config line as Redis's sdssplitargs does (parsers/sds.py)."""
    words = sds.split_args(line.encode("utf-8", "surrogateescape"))
    if words is None:
        raise ConfigError("unbalanced quotes, or a closing quote not followed by a space")
    return [w.decode("utf-8", "surrogateescape") for w in words]


def read_config(path: Path, _depth: int = 0) -> RedisConfig:
    """The settings rbkit uses, from ``path`` and the files it includes."""
    if _depth > 10:
        raise ConfigError(f"{path}: includes nest more than 10 deep")
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    settings: dict[str, str] = {}
    modules: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            args = split_args(line)
        except ConfigError as e:
            raise ConfigError(f"{path}:{number}: {e}") from None
        if not args:
            continue
        name = args[0].lower()
        if name == "include" and len(args) == 2:
            included = Path(args[1])
            if not included.is_absolute():
                included = path.parent / included
            inner = read_config(included, _depth + 1)
            settings.update(inner.settings)
            modules.extend(inner.modules)
        elif name == "loadmodule" and len(args) >= 2:
            modules.append(args[1])
        elif name == "bind" and len(args) >= 2:
            settings[name] = " ".join(args[1:])
        elif name in WANTED and len(args) >= 2:
            settings[name] = args[1]
    return RedisConfig(path, settings, tuple(modules))
