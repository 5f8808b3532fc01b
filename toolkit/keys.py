"""How key names are shown to people and written to JSON."""

from __future__ import annotations


def display_key(key: bytes) -> str:
    """The key as text: UTF-8 if it is valid UTF-8, else with invalid bytes as ``\\xNN``."""
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key.decode("utf-8", "backslashreplace")
