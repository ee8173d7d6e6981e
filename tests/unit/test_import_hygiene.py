"""The agent's own rules, checked on its source (AST): it imports only the standard library and
boto3/botocore, and stays Python 3.9 syntax. (Who may import whom, the client's layers included,
is an import-linter contract in pyproject.toml, checked by `lint-imports` over the whole graph.)"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent" / "awsac_agent"
AGENT_ALLOWED = {"boto3", "botocore", "awsac_agent", "__future__"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in a file, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def agent_modules() -> list[Path]:
    return sorted(p for p in AGENT.rglob("*.py") if "__pycache__" not in p.parts)


def test_there_are_agent_modules() -> None:
    names = {p.name for p in agent_modules()}
    assert {"jobscfg.py", "assignment.py", "archive.py", "status.py"} <= names


@pytest.mark.parametrize("path", agent_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_agent_imports_only_stdlib_and_boto3(path: Path) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: imports {mod}"
        for line, mod in imported_modules(path)
        if mod not in sys.stdlib_module_names and mod not in AGENT_ALLOWED
    ]
    assert bad == [], "the agent may import only the standard library and boto3/botocore"


@pytest.mark.parametrize("path", agent_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_agent_is_python39_syntax(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    """The AST scan finds nested and from-imports and leaves relative ones alone."""
    src = tmp_path / "m.py"
    src.write_text(
        "import os, textual.app\nfrom aiobotocore import session\nfrom . import x\n"
        "def f():\n    import yaml\n"
    )
    assert sorted(imported_modules(src)) == [
        (1, "os"),
        (1, "textual"),
        (2, "aiobotocore"),
        (5, "yaml"),
    ]


def test_agent_command_line_does_not_import_the_worker() -> None:
    """``awsac-agent autorun`` parses its command line without the worker or boto3 (boot time)."""
    import subprocess

    code = (
        "import sys; from awsac_agent import cli\n"
        "args = cli.build_parser().parse_args(['processjobs', '--keep-instance-on-failure', '3'])\n"
        "assert args.keep_instance_on_failure == 3.0, args\n"
        "cli.build_parser().parse_args(['autorun'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('boto', 'awsac_agent.processjobs'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=AGENT.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"
