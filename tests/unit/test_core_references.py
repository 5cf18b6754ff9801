"""Every name a front end takes from the core exists in the core.

A module, deploy or verify check that calls ``sessions.parse_networks`` after that function moved
to ``netaddr`` imports fine and fails only on the host, in the middle of a lockdown. This reads
every front end's source, resolves its imports of the core, and checks each ``module.name`` and
``from module import name`` against the core as it is now.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONT_ENDS = ["library", "deploys", "verify", "module_utils/sshward", "lab/sshward_lab", "roles"]
CORE_PREFIXES = ("ansible.module_utils.sshward", "sshward")


def _sources() -> list[Path]:
    files = []
    for top in FRONT_ENDS:
        files.extend(sorted((ROOT / top).rglob("*.py")))
    return files


def _core_name(module: str | None, level: int, path: Path) -> str | None:
    """The ``sshward...`` dotted name an import refers to, or None when it is not the core."""
    if level:
        if (ROOT / "module_utils/sshward") not in path.parents:
            return None
        return "sshward" + (f".{module}" if module else "")
    for prefix in CORE_PREFIXES:
        if module == prefix or (module or "").startswith(prefix + "."):
            return "sshward" + module[len(prefix) :]
    return None


def _rebound(tree: ast.AST) -> set[str]:
    """Names assigned anywhere in the file: an alias reused as a variable is not checked."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _references(path: Path):
    """(line, module name, attribute) for every name this file takes from the core."""
    tree = ast.parse(path.read_text(), str(path))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _core_name(node.module, node.level, path)
            if base is None:
                continue
            for alias in node.names:
                if alias.name == "*":
                    continue
                submodule = f"{base}.{alias.name}"
                try:
                    importlib.import_module(submodule)
                except ModuleNotFoundError:
                    yield node.lineno, base, alias.name
                else:
                    aliases[alias.asname or alias.name] = submodule
        elif isinstance(node, ast.Import):
            for alias in node.names:
                base = _core_name(alias.name, 0, path)
                if base is not None and alias.asname:
                    aliases[alias.asname] = base
    usable = {name: module for name, module in aliases.items() if name not in _rebound(tree)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in usable:
            yield node.lineno, usable[node.value.id], node.attr


SOURCES = _sources()


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_every_core_name_a_front_end_uses_exists(path):
    missing = []
    for line, module, name in _references(path):
        if not hasattr(importlib.import_module(module), name):
            missing.append(f"{path.relative_to(ROOT)}:{line}: {module}.{name}")
    assert not missing, "names the core no longer has:\n" + "\n".join(missing)


def test_the_checker_finds_a_name_the_core_lacks(tmp_path):
    front_end = tmp_path / "module.py"
    front_end.write_text(
        "from ansible.module_utils.sshward import sessions as core\n"
        "from ansible.module_utils.sshward.netaddr import parse_networks\n"
        "core.parse_networks([])\ncore.snapshot()\n"
    )
    found = [(m, n) for _, m, n in _references(front_end) if not hasattr(importlib.import_module(m), n)]
    assert found == [("sshward.sessions", "parse_networks")]
