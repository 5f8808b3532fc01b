"""The repository's layout rules: lint-clean, and parsers/ never reaches into the tool layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARSERS = ROOT / "parsers"
RUFF = Path(sys.executable).parent / "ruff"
# parsers/ reads bytes only: no CLI, no rendering, no redis client, no toolkit.
FORBIDDEN_IN_PARSERS = {"toolkit", "redis", "typer", "tabulate"}
PARSER_MODULES = sorted(PARSERS.rglob("*.py"))


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's ruff from the repository root."""
    assert RUFF.is_file(), f"ruff is not installed next to {sys.executable}"
    return subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True, check=False)


def imported_top_levels(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module (at any depth of its code)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_ruff_check_passes() -> None:
    proc = ruff("check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_check_passes() -> None:
    proc = ruff("format", "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_there_are_parser_modules() -> None:
    assert len(PARSER_MODULES) > 1


@pytest.mark.parametrize("module", PARSER_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_parsers_do_not_import_the_tool_layer(module: Path) -> None:
    assert imported_top_levels(module) & FORBIDDEN_IN_PARSERS == set()


def test_import_scan_sees_forbidden_imports(tmp_path: Path) -> None:
    # The scan above must catch every import form, including ones inside functions.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import redis.client\n"
        "from toolkit.cli.app import app\n"
        "def f():\n    import typer\n"
        "try:\n    from tabulate import tabulate\nexcept ImportError:\n    pass\n"
        "from . import sibling\n"
    )
    assert imported_top_levels(sample) == FORBIDDEN_IN_PARSERS
