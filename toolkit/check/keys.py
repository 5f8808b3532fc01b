"""How key names are shown to people and written to JSON."""

from __future__ import annotations

import base64


def key_fields(key: bytes, name: str = "key") -> dict[str, str]:
    """A key for a JSON object: ``{"key": display form}``, and ``"key_b64"`` (the exact bytes,
    base64) when the key is not valid UTF-8, since its display form is then ambiguous."""
    try:
        return {name: key.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            name: key.decode("utf-8", "backslashreplace"),
            f"{name}_b64": base64.b64encode(key).decode("ascii"),
        }


def display_key(key: bytes) -> str:
    """The key as text: UTF-8 if it is valid UTF-8, else with invalid bytes as ``\\xNN``."""
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key.decode("utf-8", "backslashreplace")
