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


# The layers of toolkit/: a room may import from its own and from the rooms listed for it;
# everything may import the shared modules (errors, steps, lifeline, mapped, text, columns,
# tasks, ahead). cli/ is the top.
SHARED = {"errors", "steps", "lifeline", "mapped", "text", "columns", "tasks", "ahead"}
MAY_IMPORT = {
    "server": {"server"},
    "sources": {"sources"},
    "check": {"check", "server", "sources"},
    "stage": {"stage", "check", "server", "sources"},
    "diff": {"diff", "check", "server", "stage", "sources"},
    "restore": {"restore", "check", "server", "stage", "diff", "sources"},
    "export": {"export", "check", "server", "stage", "diff", "restore", "sources"},
    "cli": {"cli", "check", "server", "stage", "diff", "restore", "export", "sources"},
}


def toolkit_rooms(path: Path) -> set[str]:
    """The toolkit rooms a module imports (``toolkit.check.rdb`` -> ``check``)."""
    rooms: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "toolkit" and len(parts) > 1:
                rooms.add(parts[1])
    return rooms - {"__version__"}


@pytest.mark.parametrize(
    "module",
    sorted((ROOT / "toolkit").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_toolkit_rooms_import_only_downwards(module: Path) -> None:
    parts = module.relative_to(ROOT / "toolkit").parts
    if parts == ("__main__.py",):  # `python -m toolkit`: the command line itself
        assert toolkit_rooms(module) == {"cli"}
        return
    room = parts[0] if len(parts) > 1 else None  # None: a shared module, which imports no room
    allowed = SHARED | (MAY_IMPORT[room] if room else set())
    assert toolkit_rooms(module) <= allowed


def test_the_command_line_loads_little() -> None:
    """Importing the CLI (what `rbkit --help` pays) loads no parser, renderer or client."""
    code = (
        "import sys, toolkit.cli.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('toolkit', 'parsers', 'tabulate', 'redis')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stdout))  # a list of module names
    assert not loaded & {"tabulate", "redis", "parsers.rdb.walker", "toolkit.diff.render"}
    assert len(loaded) <= 20, sorted(loaded)


def test_diff_top_default_is_the_renderers() -> None:
    import inspect

    from toolkit.cli.diff import diff
    from toolkit.diff.render import TOP_PREFIXES

    assert inspect.signature(diff).parameters["top"].default == TOP_PREFIXES
