"""``rbkit diff`` on a malformed saved ``check --json`` report: one line naming the field,
exit 2, never an internal error. Each case is a real report (rbkit check --json of a fixture)
with one field made wrong, written as text so that shapes JSON allows but Python's reader
turns into floats or infinities (1e999, NaN) reach rbkit as a user's file would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fixture_file, invoke_cli

FIXTURE = "redis-7.0-all-types"


@pytest.fixture(scope="module")
def report_text() -> str:
    out = invoke_cli("check", "--json", fixture_file(FIXTURE))
    assert out.exit_code == 0
    return out.stdout


def with_field(text: str, path: list[str], raw: str) -> str:
    """The report with the field at ``path`` replaced by the JSON text ``raw``."""
    marker = "\u0000rbkit-marker\u0000"
    data = json.loads(text)
    node = data
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = marker
    return json.dumps(data).replace(json.dumps(marker), raw)


DEEP = "[" * 100_000 + "]" * 100_000

# (what is changed, raw JSON, what the one line must name)
CASES = {
    "problems-string": (["problems"], '"x"', "problems: expected a list"),
    "problems-string-invalid": (["problems"], '"x"', "problems: expected a list"),
    "problem-not-object": (["problems"], "[1]", "problems.0: expected an object"),
    "keys-1e999": (["databases", "0", "keys"], "1e999", "databases.0.keys: expected a count"),
    "keys-infinity": (["databases", "0", "keys"], "Infinity", "found Infinity"),
    "keys-nan": (["databases", "0", "keys"], "NaN", "databases.0.keys"),
    "keys-string": (["databases", "0", "keys"], '"54"', "databases.0.keys: expected a count"),
    "keys-negative": (["databases", "0", "keys"], "-1", "found -1"),
    "keys-fraction": (["databases", "0", "keys"], "45.5", "found 45.5"),
    "keys-boolean": (["databases", "0", "keys"], "true", "found true"),
    "keys-huge": (["databases", "0", "keys"], str(2**64), "databases.0.keys"),
    "keys-missing-db": (["databases", "0"], "{}", "databases.0.keys: expected a count"),
    "expires-list": (["databases", "0", "expires"], "[1]", "databases.0.expires"),
    "expires-above-keys": (["databases", "1", "expires"], "999", "at most keys"),
    "empty-string": (["databases", "0", "empty"], '"x"', "databases.0.empty"),
    "expired-1e999": (["databases", "0", "expired_at_check"], "1e999", "expired_at_check"),
    "by-type-list": (["databases", "0", "by_type"], "[]", "databases.0.by_type: expected an obj"),
    "by-type-string": (["databases", "0", "by_type", "string"], '"a"', 'by_type."string"'),
    "by-type-sum": (["databases", "0", "by_type", "string"], "0", "adding up to keys"),
    "db-name": (["databases"], '{"zero": {"keys": 1, "expires": 0}}', 'databases."zero"'),
    "databases-list": (["databases"], "[]", "databases: expected an object"),
    "databases-missing": (["databases"], "null", "databases: expected an object"),
    "valid-string": (["valid"], '"yes"', "valid: expected true or false"),
    "aux-string": (["aux"], '"x"', "aux: expected an object"),
    "aux-ver-number": (["aux", "redis-ver"], "7", "aux.redis-ver: expected a string"),
    "deep-nesting": (["aux"], DEEP, "nested too deeply"),
    "schema": (["schema"], '"rbkit.check/2"', "schema 'rbkit.check/2'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_report_is_one_line_naming_the_field(
    case: str, report_text: str, tmp_path: Path
) -> None:
    path, raw, expected = CASES[case]
    text = with_field(report_text, path, raw)
    if case == "problems-string-invalid":
        text = with_field(text, ["valid"], "false")
    saved = tmp_path / "saved.json"
    saved.write_text(text)
    out = invoke_cli("diff", saved, fixture_file(FIXTURE))
    assert out.exit_code == 2, (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"error: {saved}: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "internal error" not in lines[0]
    assert out.stdout == ""


def test_the_report_as_saved_still_diffs(report_text: str, tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(report_text)
    out = invoke_cli("diff", saved, fixture_file(FIXTURE))
    assert out.exit_code == 0, out.stderr
