"""The JSON Schemas of schemas/ applied to rbkit's ``--json`` output.

Every way the tests run rbkit (conftest.invoke_cli, restore_support.rbkit, the fault
sandbox) passes what it printed through :func:`check_output`: when the command line asked for
JSON, stdout must be one JSON object valid against the schema its ``"schema"`` field names
(``rbkit.check/1`` -> ``schemas/rbkit.check-1.json``). A JSON output that names no schema, or
one that is not shipped, fails the test.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
validated: list[str] = []  # the schema of each output validated, in order (for the tests)


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator of schema ``name`` (``rbkit.check/1``), from schemas/."""
    path = SCHEMAS / (name.replace("/", "-") + ".json")
    assert path.is_file(), f"no JSON Schema for {name!r} in schemas/ ({path.name})"
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(document: Any) -> list[str]:
    """Where ``document`` breaks the schema it names (empty: valid)."""
    if not isinstance(document, dict) or not isinstance(document.get("schema"), str):
        return ["not an object with a 'schema' field"]
    errors = sorted(validator(document["schema"]).iter_errors(document), key=lambda e: e.path)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def assert_valid(document: Any) -> None:
    """Fail unless ``document`` is valid against the schema it names."""
    found = problems(document)
    assert not found, "JSON output breaks its schema:\n  " + "\n  ".join(found[:20])
    validated.append(document["schema"])


def asked_for_json(args: Sequence[str]) -> bool:
    """Did this command line ask for JSON (``--json``, ``--format json``)?"""
    args = list(args)
    if "--json" in args or "--format=json" in args:
        return True
    return any(a == "--format" and b == "json" for a, b in itertools.pairwise(args))


def check_output(args: Sequence[object], stdout: str) -> None:
    """Validate ``stdout`` of ``rbkit ARGS`` when ARGS asked for JSON and it printed any."""
    if not asked_for_json([str(a) for a in args]) or not stdout.strip():
        return
    lines = stdout.strip().splitlines()
    if len(lines) > 1 and all(line.startswith("{") and line.endswith("}") for line in lines):
        for line in lines:  # JSON Lines: check of several backups, one object each
            assert_valid(json.loads(line))
        return
    assert_valid(json.loads(stdout))
