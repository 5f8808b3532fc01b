"""Printed URLs never carry a password (diff shows none; restore shows where one was)."""

from __future__ import annotations

from toolkit.server.connect import is_url, safe_url


def test_mask_keeps_a_placeholder_where_the_password_was() -> None:
    assert safe_url("redis://:pw@h:1", mask="***") == "redis://:***@h:1"
    assert safe_url("redis://u:pw@h:1/0", mask="***") == "redis://u:***@h:1/0"
    assert safe_url("redis://u@h:1", mask="***") == "redis://u@h:1"


def test_password_query_parameter_is_dropped_with_or_without_mask() -> None:
    for mask in ("", "***"):
        shown = safe_url("redis://h:1?password=secret&db=2", mask=mask)
        assert "secret" not in shown and shown.endswith("?db=2")


def test_is_url() -> None:
    assert is_url("REDIS://h") and is_url("unix:///tmp/s") and not is_url("dump.rdb")
